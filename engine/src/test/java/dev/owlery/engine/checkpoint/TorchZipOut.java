package dev.owlery.engine.checkpoint;

import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.zip.CRC32;

/**
 * Test-only zip writer laid out like PyTorch's {@code PyTorchStreamWriter} (miniz): STORED entries
 * whose data starts on a 64-byte boundary thanks to an "FB" padding extra field in the local
 * header; optionally zip64 extended information and end records for every entry.
 */
final class TorchZipOut {

  private static final int ALIGNMENT = 64;
  private static final int FB_PADDING = 0x4246;

  private record Central(byte[] name, long crc, long size, long localHeader) {}

  private final boolean zip64;
  private final Out out = new Out();
  private final List<Central> central = new ArrayList<>();

  TorchZipOut(boolean zip64) {
    this.zip64 = zip64;
  }

  void add(String entryName, byte[] data) {
    byte[] name = entryName.getBytes(StandardCharsets.UTF_8);
    CRC32 crc = new CRC32();
    crc.update(data);
    long localHeader = out.size();
    int zip64Extra = zip64 ? 4 + 16 : 0;
    long dataStart = localHeader + 30 + name.length + zip64Extra + 4;
    int padding = (int) ((ALIGNMENT - dataStart % ALIGNMENT) % ALIGNMENT);
    out.u32(0x04034b50).u16(zip64 ? 45 : 20).u16(0).u16(0).u16(0).u16(0x21).u32(crc.getValue());
    out.u32(zip64 ? 0xffffffffL : data.length).u32(zip64 ? 0xffffffffL : data.length);
    out.u16(name.length).u16(zip64Extra + 4 + padding).bytes(name);
    if (zip64) {
      out.u16(0x0001).u16(16).u64(data.length).u64(data.length);
    }
    out.u16(FB_PADDING).u16(padding).bytes(new byte[padding]);
    out.bytes(data);
    central.add(new Central(name, crc.getValue(), data.length, localHeader));
  }

  byte[] finish() {
    long directoryStart = out.size();
    for (Central c : central) {
      out.u32(0x02014b50).u16(zip64 ? 45 : 20).u16(zip64 ? 45 : 20).u16(0).u16(0).u16(0).u16(0x21).u32(c.crc());
      out.u32(zip64 ? 0xffffffffL : c.size()).u32(zip64 ? 0xffffffffL : c.size());
      out.u16(c.name().length).u16(zip64 ? 28 : 0).u16(0).u16(0).u16(0).u32(0);
      out.u32(zip64 ? 0xffffffffL : c.localHeader()).bytes(c.name());
      if (zip64) {
        out.u16(0x0001).u16(24).u64(c.size()).u64(c.size()).u64(c.localHeader());
      }
    }
    long directorySize = out.size() - directoryStart;
    if (zip64) {
      long record = out.size();
      out.u32(0x06064b50).u64(44).u16(45).u16(45).u32(0).u32(0);
      out.u64(central.size()).u64(central.size()).u64(directorySize).u64(directoryStart);
      out.u32(0x07064b50).u32(0).u64(record).u32(1);
    }
    out.u32(0x06054b50).u16(0).u16(0);
    out.u16(zip64 ? 0xffff : central.size()).u16(zip64 ? 0xffff : central.size());
    out.u32(zip64 ? 0xffffffffL : directorySize).u32(zip64 ? 0xffffffffL : directoryStart).u16(0);
    return out.toByteArray();
  }

  /** Little-endian byte sink. */
  private static final class Out extends ByteArrayOutputStream {
    Out u16(int v) {
      write(v & 0xff);
      write((v >>> 8) & 0xff);
      return this;
    }

    Out u32(long v) {
      for (int i = 0; i < 4; i++) {
        write((int) (v >>> (8 * i)) & 0xff);
      }
      return this;
    }

    Out u64(long v) {
      for (int i = 0; i < 8; i++) {
        write((int) (v >>> (8 * i)) & 0xff);
      }
      return this;
    }

    Out bytes(byte[] b) {
      writeBytes(b);
      return this;
    }
  }
}
