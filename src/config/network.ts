// IPv4 arithmetic for the lab's fixed subnet. Small on purpose: we only need CIDR parsing,
// addresses by offset, overlap and "is this private".

export interface Ipv4Subnet {
  /** Network address as an unsigned 32-bit number. */
  base: number;
  prefix: number;
  /** Number of addresses, network and broadcast included. */
  size: number;
}

/** One octet, 0-255, without leading zeros (010 reads as octal to some tools, decimal to others). */
const OCTET = '(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])';
/** A dotted-quad IPv4 address: the one grammar every address in etcd-lab is read with. */
export const IPV4_PATTERN = `^${OCTET}\\.${OCTET}\\.${OCTET}\\.${OCTET}$`;
/** An IPv4 CIDR: a dotted-quad address, a slash and a prefix length from 0 to 32. */
export const CIDR_PATTERN = `^${OCTET}\\.${OCTET}\\.${OCTET}\\.${OCTET}/(3[0-2]|[12]?[0-9])$`;
const IPV4 = new RegExp(IPV4_PATTERN);

/** "10.79.0.11" → its 32-bit value; undefined for anything that is not a dotted-quad IPv4 address. */
export function parseIpv4(text: string): number | undefined {
  const m = IPV4.exec(text);
  if (!m) return undefined;
  return m.slice(1).map(Number).reduce((acc, o) => acc * 256 + o, 0);
}

export function formatIpv4(value: number): string {
  return [24, 16, 8, 0].map((shift) => Math.floor(value / 2 ** shift) % 256).join('.');
}

/** Parses "a.b.c.d/n". Returns an error text when it is not a CIDR or has host bits set. */
export function parseSubnet(text: string): Ipv4Subnet | string {
  const m = /^([\d.]+)\/(\d{1,2})$/.exec(text);
  const address = m ? parseIpv4(m[1]!) : undefined;
  const prefix = m ? Number(m[2]) : NaN;
  if (address === undefined || !(prefix >= 0 && prefix <= 32)) {
    return 'is not an IPv4 CIDR such as 10.79.0.0/24';
  }
  const size = 2 ** (32 - prefix);
  if (address % size !== 0) {
    return `has host bits set: the network address of a /${prefix} here is ${formatIpv4(address - (address % size))}`;
  }
  return { base: address, prefix, size };
}

export function formatSubnet(s: Ipv4Subnet): string {
  return `${formatIpv4(s.base)}/${s.prefix}`;
}

export function addressAt(s: Ipv4Subnet, offset: number): string {
  return formatIpv4(s.base + offset);
}

export function subnetsOverlap(a: Ipv4Subnet, b: Ipv4Subnet): boolean {
  return a.base < b.base + b.size && b.base < a.base + a.size;
}

export function subnetContains(outer: Ipv4Subnet, inner: Ipv4Subnet): boolean {
  return inner.base >= outer.base && inner.base + inner.size <= outer.base + outer.size;
}

/** RFC 1918 private ranges: the only space a lab may take without borrowing someone's addresses. */
const PRIVATE_RANGES = ['10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16'].map((c) => parseSubnet(c) as Ipv4Subnet);

export function isPrivateSubnet(s: Ipv4Subnet): boolean {
  return PRIVATE_RANGES.some((range) => subnetContains(range, s));
}
