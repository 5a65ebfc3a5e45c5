package dev.owlery.cluster.membership;

import java.net.InetAddress;
import java.net.UnknownHostException;
import java.util.regex.Pattern;

/**
 * A block of IP addresses in CIDR notation ({@code 10.0.0.0/8}, {@code fd00::/8}); a bare address
 * is a block of one.
 *
 * @param network the block's first address (bits past the prefix are ignored)
 * @param prefixLength how many leading bits an address shares with {@code network} to be in the block
 */
public record AddressBlock(InetAddress network, int prefixLength) {

  private static final Pattern IPV4 = Pattern.compile("[0-9]{1,3}(\\.[0-9]{1,3}){3}");

  public AddressBlock {
    int bits = network.getAddress().length * 8;
    if (prefixLength < 0 || prefixLength > bits) {
      throw new IllegalArgumentException("the prefix length of %s must be in 0..%d. Given: %d"
          .formatted(network.getHostAddress(), bits, prefixLength));
    }
  }

  /**
   * Parses {@code ADDRESS/PREFIX} or a bare {@code ADDRESS} (IP literals only, never looked up).
   *
   * @throws IllegalArgumentException saying what is wrong with {@code text}
   */
  public static AddressBlock parse(String text) {
    String[] parts = text.strip().split("/", -1);
    String address = parts[0];
    if (parts.length > 2 || !(IPV4.matcher(address).matches() || address.contains(":"))) {
      throw new IllegalArgumentException("'%s' is not an IP address or a CIDR block like 10.0.0.0/8".formatted(text));
    }
    try {
      InetAddress network = InetAddress.getByName(address);
      int bits = network.getAddress().length * 8;
      return new AddressBlock(network, parts.length == 1 ? bits : Integer.parseInt(parts[1]));
    } catch (UnknownHostException | NumberFormatException e) {
      throw new IllegalArgumentException("'%s' is not an IP address or a CIDR block like 10.0.0.0/8".formatted(text), e);
    }
  }

  /** Whether {@code address} lies in this block (an IPv4 address never lies in an IPv6 block, nor the reverse). */
  public boolean contains(InetAddress address) {
    byte[] candidate = address.getAddress();
    byte[] prefix = network.getAddress();
    if (candidate.length != prefix.length) {
      return false;
    }
    int whole = prefixLength / 8;
    for (int i = 0; i < whole; i++) {
      if (candidate[i] != prefix[i]) {
        return false;
      }
    }
    int rest = prefixLength % 8;
    if (rest == 0) {
      return true;
    }
    int mask = (0xff << (8 - rest)) & 0xff;
    return (candidate[whole] & mask) == (prefix[whole] & mask);
  }

  @Override
  public String toString() {
    return network.getHostAddress() + "/" + prefixLength;
  }
}
