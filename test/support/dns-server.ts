/**
 * A small real DNS server for tests: UDP on 127.0.0.1, port 0, answering from
 * an in-memory zone. The wire format (RFC 1035) is written here by hand so the
 * relay's resolver talks to an actual server over a socket.
 */
import dgram from 'node:dgram';
import type { AddressInfo } from 'node:net';
import net from 'node:net';

export type DnsRecord =
  | { type: 'A'; address: string }
  | { type: 'AAAA'; address: string }
  | { type: 'MX'; preference: number; exchange: string }
  | { type: 'TXT'; text: string };

/** What a name answers: records (none = "no answer", NOERROR), or a failure mode */
export type DnsEntry = DnsRecord[] | 'nxdomain' | 'servfail' | 'timeout';

export interface DnsServer {
  port: number;
  /** "127.0.0.1:PORT", ready for delivery.dns.servers */
  address: string;
  /** Sets (replaces) what a name answers */
  set(name: string, entry: DnsEntry): void;
  /** Every question asked so far, as "TYPE name" */
  queries: string[];
  close(): Promise<void>;
}

const TYPE_CODES = { A: 1, MX: 15, TXT: 16, AAAA: 28 } as const;
const TYPE_NAMES = new Map<number, string>(
  Object.entries(TYPE_CODES).map(([name, code]) => [code, name]),
);
const RCODE = { ok: 0, servfail: 2, nxdomain: 3 } as const;

const normalise = (name: string): string => name.toLowerCase().replace(/\.$/, '');

function encodeName(name: string): Buffer {
  const labels = normalise(name).split('.').filter(Boolean);
  return Buffer.concat([
    ...labels.map((label) =>
      Buffer.concat([Buffer.from([label.length]), Buffer.from(label, 'ascii')]),
    ),
    Buffer.from([0]),
  ]);
}

function u16(value: number): Buffer {
  const buffer = Buffer.alloc(2);
  buffer.writeUInt16BE(value);
  return buffer;
}

function ipv6Bytes(address: string): Buffer {
  const [head = '', tail = ''] = address.split('::');
  const groups = (part: string) => (part ? part.split(':') : []);
  const missing = 8 - groups(head).length - groups(tail).length;
  const all = address.includes('::')
    ? [...groups(head), ...Array<string>(missing).fill('0'), ...groups(tail)]
    : groups(head);
  return Buffer.concat(all.map((group) => u16(parseInt(group, 16))));
}

function rdata(record: DnsRecord): Buffer {
  switch (record.type) {
    case 'A':
      return Buffer.from(record.address.split('.').map(Number));
    case 'AAAA':
      return ipv6Bytes(record.address);
    case 'MX':
      return Buffer.concat([u16(record.preference), encodeName(record.exchange)]);
    case 'TXT': {
      // One TXT record may hold several <=255-byte strings: split long text the way zone files do
      const chunks: Buffer[] = [];
      const bytes = Buffer.from(record.text, 'utf8');
      for (let at = 0; at < bytes.length || chunks.length === 0; at += 255) {
        const chunk = bytes.subarray(at, at + 255);
        chunks.push(Buffer.from([chunk.length]), chunk);
      }
      return Buffer.concat(chunks);
    }
  }
}

function answer(record: DnsRecord): Buffer {
  const data = rdata(record);
  const ttl = Buffer.alloc(4);
  ttl.writeUInt32BE(60);
  // 0xc00c: a pointer to the name in the question
  return Buffer.concat([
    u16(0xc00c),
    u16(TYPE_CODES[record.type]),
    u16(1),
    ttl,
    u16(data.length),
    data,
  ]);
}

interface Question {
  id: number;
  rd: boolean;
  name: string;
  type: number;
  /** The question section exactly as asked, echoed back */
  raw: Buffer;
}

function parseQuestion(packet: Buffer): Question | null {
  if (packet.length < 17 || packet.readUInt16BE(4) !== 1) return null;
  const labels: string[] = [];
  let at = 12;
  for (let guard = 0; guard < 128; guard++) {
    const length = packet[at];
    if (length === undefined || length > 63) return null;
    at++;
    if (length === 0) break;
    labels.push(packet.toString('ascii', at, at + length));
    at += length;
  }
  if (at + 4 > packet.length) return null;
  return {
    id: packet.readUInt16BE(0),
    rd: ((packet[2] ?? 0) & 1) === 1,
    name: normalise(labels.join('.')),
    type: packet.readUInt16BE(at),
    raw: packet.subarray(12, at + 4),
  };
}

function response(question: Question, rcode: number, answers: Buffer[]): Buffer {
  const flags = 0x8000 | 0x0400 | (question.rd ? 0x0100 : 0) | 0x0080 | rcode;
  return Buffer.concat([
    u16(question.id),
    u16(flags),
    u16(1),
    u16(answers.length),
    u16(0),
    u16(0),
    question.raw,
    ...answers,
  ]);
}

export async function startDnsServer(zone: Record<string, DnsEntry> = {}): Promise<DnsServer> {
  const entries = new Map<string, DnsEntry>(
    Object.entries(zone).map(([name, entry]) => [normalise(name), entry]),
  );
  const queries: string[] = [];
  const socket = dgram.createSocket('udp4');
  socket.on('message', (packet, peer) => {
    const question = parseQuestion(packet);
    if (!question) return;
    const typeName = TYPE_NAMES.get(question.type) ?? `TYPE${question.type}`;
    queries.push(`${typeName} ${question.name}`);
    // Names not in the zone do not exist
    const entry = entries.get(question.name) ?? 'nxdomain';
    if (entry === 'timeout') return;
    const reply =
      entry === 'nxdomain' || entry === 'servfail'
        ? response(question, RCODE[entry], [])
        : response(question, RCODE.ok, entry.filter((r) => r.type === typeName).map(answer));
    socket.send(reply, peer.port, peer.address);
  });
  await new Promise<void>((resolve, reject) => {
    socket.once('error', reject);
    socket.bind(0, '127.0.0.1', () => resolve());
  });
  const { port } = socket.address() as AddressInfo;
  return {
    port,
    address: `127.0.0.1:${port}`,
    set: (name, entry) => void entries.set(normalise(name), entry),
    queries,
    close: () => new Promise<void>((resolve) => socket.close(() => resolve())),
  };
}

/**
 * A port free on every one of `hosts` at once: every MX host is contacted on
 * the same port (delivery.mx.port), so upstreams on 127.0.0.10, .11, ... share it.
 */
export async function freePortOn(hosts: readonly string[]): Promise<number> {
  const listen = (host: string, port: number) =>
    new Promise<net.Server | null>((resolve) => {
      const server = net.createServer();
      server.once('error', () => resolve(null));
      server.listen(port, host, () => resolve(server));
    });
  for (let attempt = 0; attempt < 20; attempt++) {
    const first = await listen(hosts[0] ?? '127.0.0.1', 0);
    if (!first) continue;
    const port = (first.address() as AddressInfo).port;
    const rest = await Promise.all(hosts.slice(1).map((host) => listen(host, port)));
    const all = [first, ...rest];
    await Promise.all(
      all.map((server) => server && new Promise((resolve) => server.close(resolve))),
    );
    if (rest.every(Boolean)) return port;
  }
  throw new Error(`No port free on all of ${hosts.join(', ')}`);
}
