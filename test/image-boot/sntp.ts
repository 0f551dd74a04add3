/**
 * A minimal SNTP server (RFC 4330) on the host's loopback for the emulated
 * box: QEMU's user-mode network hands the guest's packets for 10.0.2.2 to
 * 127.0.0.1, so the guest's clock syncs without any packet leaving the host.
 * Answers with the host's clock as a stratum-1 server.
 */
import dgram from 'node:dgram';

const NTP_EPOCH_OFFSET_S = 2_208_988_800;
const PACKET_BYTES = 48;

function writeTimestamp(packet: Buffer, offset: number, ms: number): void {
  const seconds = Math.floor(ms / 1000) + NTP_EPOCH_OFFSET_S;
  packet.writeUInt32BE(seconds >>> 0, offset);
  packet.writeUInt32BE(Math.floor(((ms % 1000) / 1000) * 2 ** 32) >>> 0, offset + 4);
}

function reply(request: Buffer): Buffer {
  const now = Date.now();
  const packet = Buffer.alloc(PACKET_BYTES);
  packet[0] = (0 << 6) | (4 << 3) | 4; // no leap warning, version 4, server mode
  packet[1] = 1; // stratum 1: a reference clock
  packet[2] = request[2] ?? 6; // the client's poll interval
  packet.writeInt8(-20, 3); // precision ~1 us
  packet.write('LOCL', 12, 'ascii'); // reference id
  writeTimestamp(packet, 16, now); // reference
  request.copy(packet, 24, 40, 48); // originate = the client's transmit time, which it checks
  writeTimestamp(packet, 32, now); // receive
  writeTimestamp(packet, 40, now); // transmit
  return packet;
}

export interface SntpServer {
  /** Requests answered so far */
  answered: number;
  close(): Promise<void>;
}

export async function startSntp(host = '127.0.0.1', port = 123): Promise<SntpServer> {
  const socket = dgram.createSocket('udp4');
  const server: SntpServer = {
    answered: 0,
    close: () => new Promise((resolve) => socket.close(() => resolve())),
  };
  socket.on('message', (request, from) => {
    if (request.length < PACKET_BYTES) return;
    socket.send(reply(request), from.port, from.address);
    server.answered++;
  });
  await new Promise<void>((resolve, reject) => {
    socket.once('error', reject);
    socket.bind(port, host, () => resolve());
  });
  return server;
}
