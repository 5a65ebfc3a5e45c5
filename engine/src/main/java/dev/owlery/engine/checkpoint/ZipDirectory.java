package dev.owlery.engine.checkpoint;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * The entries of a zip archive found through its central directory (zip64 included), each located
 * as a byte range of the mapped file: the container {@code torch.save} writes, whose entries are
 * STORED, so a tensor's storage is read in place.
 */
final class ZipDirectory {

  /** One STORED entry: its bytes are {@code [dataOffset, dataOffset + size)} of the file. */
  record Entry(String name, long dataOffset, long size) {}

  private static final ValueLayout.OfInt U32 = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
  private static final ValueLayout.OfShort U16 = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
  private static final ValueLayout.OfLong U64 = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

  private static final int END_OF_CENTRAL_DIRECTORY = 0x06054b50;
  private static final int ZIP64_END_OF_CENTRAL_DIRECTORY = 0x06064b50;
  private static final int ZIP64_LOCATOR = 0x07064b50;
  private static final int CENTRAL_FILE_HEADER = 0x02014b50;
  private static final int LOCAL_FILE_HEADER = 0x04034b50;
  private static final int ZIP64_EXTRA = 0x0001;
  private static final int EOCD_SIZE = 22;
  private static final int CENTRAL_HEADER_SIZE = 46;
  private static final int LOCAL_HEADER_SIZE = 30;
  private static final int STORED = 0;

  private final Path path;
  private final MemorySegment file;

  private ZipDirectory(Path path, MemorySegment file) {
    this.path = path;
    this.file = file;
  }

  /** True when the mapped file starts like a zip archive (a local file header). */
  static boolean looksLikeZip(MemorySegment file) {
    return file.byteSize() >= 4 && file.get(U32, 0) == LOCAL_FILE_HEADER;
  }

  /** Reads every entry of the archive mapped as {@code file}, keyed by name in directory order. */
  static Map<String, Entry> read(Path path, MemorySegment file) {
    return new ZipDirectory(path, file).entries();
  }

  private Map<String, Entry> entries() {
    long eocd = findEndOfCentralDirectory();
    long count = u16(eocd + 10);
    long directorySize = u32(eocd + 12);
    long directoryOffset = u32(eocd + 16);
    long locator = eocd - 20;
    if (locator >= 0 && file.get(U32, locator) == ZIP64_LOCATOR) {
      long zip64 = file.get(U64, locator + 8);
      require(zip64 >= 0 && zip64 <= locator - 56 && file.get(U32, zip64) == ZIP64_END_OF_CENTRAL_DIRECTORY,
          "the zip64 end-of-central-directory record at offset %d is missing or damaged".formatted(zip64));
      count = file.get(U64, zip64 + 32);
      directorySize = file.get(U64, zip64 + 40);
      directoryOffset = file.get(U64, zip64 + 48);
    }
    require(directoryOffset >= 0 && directorySize >= 0 && directorySize <= eocd - directoryOffset
            && count >= 0 && count <= directorySize / CENTRAL_HEADER_SIZE,
        "the central directory (%d entries, %d bytes at offset %d) lies outside the %d-byte file (truncated zip?)"
            .formatted(count, directorySize, directoryOffset, file.byteSize()));
    Map<String, Entry> entries = new LinkedHashMap<>();
    long at = directoryOffset;
    long end = directoryOffset + directorySize;
    for (long i = 0; i < count; i++) {
      require(at + CENTRAL_HEADER_SIZE <= end && file.get(U32, at) == CENTRAL_FILE_HEADER,
          "central directory entry %d at offset %d is damaged".formatted(i, at));
      at = readCentralEntry(at, end, entries);
    }
    return entries;
  }

  /** Reads the central header at {@code at} into {@code entries}; returns where the next one starts. */
  private long readCentralEntry(long at, long end, Map<String, Entry> entries) {
    int method = u16(at + 10);
    long compressedSize = u32(at + 20);
    long size = u32(at + 24);
    int nameLength = u16(at + 28);
    int extraLength = u16(at + 30);
    int commentLength = u16(at + 32);
    long localHeader = u32(at + 42);
    long next = at + CENTRAL_HEADER_SIZE + nameLength + extraLength + commentLength;
    require(next <= end, "central directory entry at offset %d runs past the directory".formatted(at));
    String name = new String(
        file.asSlice(at + CENTRAL_HEADER_SIZE, nameLength).toArray(ValueLayout.JAVA_BYTE), StandardCharsets.UTF_8);
    // zip64: the extended-information field holds, in order, each 32-bit field that is saturated.
    long extra = at + CENTRAL_HEADER_SIZE + nameLength;
    long extraEnd = extra + extraLength;
    while (extra + 4 <= extraEnd) {
      int id = u16(extra);
      int length = u16(extra + 2);
      long field = extra + 4;
      long fieldEnd = Math.min(field + length, extraEnd);
      if (id == ZIP64_EXTRA) {
        if (size == 0xffffffffL) {
          size = checkedU64(field, fieldEnd, name);
          field += 8;
        }
        if (compressedSize == 0xffffffffL) {
          compressedSize = checkedU64(field, fieldEnd, name);
          field += 8;
        }
        if (localHeader == 0xffffffffL) {
          localHeader = checkedU64(field, fieldEnd, name);
        }
      }
      extra += 4 + length;
    }
    if (method != STORED) {
      throw new CheckpointException(path, null,
          "zip entry '%s' is compressed (method %d); torch.save writes STORED entries, so this file was re-packed"
              .formatted(name, method));
    }
    require(compressedSize == size, "zip entry '%s' is STORED but its sizes differ (%d vs %d)"
        .formatted(name, compressedSize, size));
    require(localHeader >= 0 && localHeader <= file.byteSize() - LOCAL_HEADER_SIZE
            && file.get(U32, localHeader) == LOCAL_FILE_HEADER,
        "zip entry '%s': local header at offset %d is missing (truncated zip?)".formatted(name, localHeader));
    long data = localHeader + LOCAL_HEADER_SIZE + u16(localHeader + 26) + u16(localHeader + 28);
    require(size >= 0 && size <= file.byteSize() - data,
        "zip entry '%s' (%d bytes at offset %d) runs past the end of the %d-byte file (truncated zip?)"
            .formatted(name, size, data, file.byteSize()));
    if (entries.put(name, new Entry(name, data, size)) != null) {
      throw new CheckpointException(path, null, "zip entry '%s' appears twice".formatted(name));
    }
    return next;
  }

  private long findEndOfCentralDirectory() {
    long size = file.byteSize();
    long lowest = Math.max(0, size - EOCD_SIZE - 0xffff);
    for (long at = size - EOCD_SIZE; at >= lowest; at--) {
      if (file.get(U32, at) == END_OF_CENTRAL_DIRECTORY && at + EOCD_SIZE + u16(at + 20) == size) {
        return at;
      }
    }
    throw new CheckpointException(path, null,
        "no zip end-of-central-directory record in the last %d bytes: the zip is truncated or damaged"
            .formatted(size - lowest));
  }

  private long checkedU64(long at, long limit, String name) {
    require(at + 8 <= limit, "zip entry '%s': zip64 extra field is too short".formatted(name));
    long v = file.get(U64, at);
    require(v >= 0, "zip entry '%s': zip64 value %d is out of range".formatted(name, v));
    return v;
  }

  private int u16(long at) {
    return Short.toUnsignedInt(file.get(U16, at));
  }

  private long u32(long at) {
    return Integer.toUnsignedLong(file.get(U32, at));
  }

  private void require(boolean ok, String problem) {
    if (!ok) {
      throw new CheckpointException(path, null, problem);
    }
  }
}
