/**
 * `make bench`: edge-relay, a private Postfix instance and the library floor
 * (bench/floor.mjs: the design card's libraries with none of our own work)
 * under the same load, in the same run, all relaying to the same smtp-sink
 * on loopback. Prints `name value unit` lines, then a side-by-side table with
 * ratios. Figures, not tests: nothing here passes or fails.
 */
import { execFileSync, spawn } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net, { type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { serveUntilRunning, launchRelay, testConfig } from '../test/support/relay.js';
import {
  CARD_UNITS,
  cardFigures,
  edgeRelayOnCard,
  floorOnCard,
  postfixOnCard,
  type CardFigures,
} from './card.js';
import {
  coldCache,
  hwmKb,
  nowMs,
  sampleMemory,
  smtpSource,
  startSink,
  treeRssKb,
  waitListening,
  type Sink,
} from './measure.js';

const HERE = path.dirname(fileURLToPath(import.meta.url));

/**
 * A private copy of node for the relays under test. PSS divides a page among
 * the processes that map it: run by this script's own node binary, a relay
 * would share the binary's pages with the benchmark and look smaller than it
 * is on a box where it runs alone (as the single executable does).
 */
const NODE_DIR = mkdtempSync(path.join(tmpdir(), 'edge-relay-bench-node-'));
const NODE = path.join(NODE_DIR, 'node');
copyFileSync(process.execPath, NODE);
process.once('exit', () => rmSync(NODE_DIR, { recursive: true, force: true }));
/** The single executable for this machine (bench/run.sh builds it), measured as it runs on the box */
const SEA = process.env.BENCH_SEA;
const MESSAGES = Number(process.env.BENCH_MESSAGES ?? 3000);
const LATENCY_MESSAGES = 300;
/**
 * Idle memory is read this long after the start: in its first seconds V8
 * still holds the start's garbage, and its memory reducer collects it within
 * about ten (86 MB at 3 s, 80 MB at 12 s); a box then idles for hours
 */
const IDLE_SETTLE_MS = 12_000;
const MB = 1024 * 1024;

interface Target {
  name: string;
  port: number;
  roots(): number[];
  stop(): Promise<void>;
}

async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

async function startPostfix(sink: Sink): Promise<Target> {
  const dir = mkdtempSync(path.join(tmpdir(), 'edge-relay-bench-postfix-'));
  const port = await freePort();
  execFileSync(
    'bash',
    [path.join(HERE, 'postfix.sh'), dir, String(port), String(sink.port), 'start'],
    { stdio: 'pipe' },
  );
  const master = Number(readFileSync(path.join(dir, 'queue/pid/master.pid'), 'utf8').trim());
  await waitListening(port);
  return {
    name: 'postfix',
    port,
    roots: () => [master],
    async stop() {
      execFileSync(
        'bash',
        [path.join(HERE, 'postfix.sh'), dir, String(port), String(sink.port), 'stop'],
        { stdio: 'pipe' },
      );
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** The environment the systemd unit starts the relay with (NODE_OPTIONS, MALLOC_ARENA_MAX): the bench measures it as it runs */
function serviceEnv(): Record<string, string> {
  const unit = readFileSync(path.join(HERE, '..', 'image', 'edge-relay.service'), 'utf8');
  return Object.fromEntries(
    [...unit.matchAll(/^Environment=([A-Z_]+)=(.*)$/gm)].map(([, name, value]) => [name!, value!]),
  );
}

const relayConfig = (sink: Sink) => ({
  smtp: {
    maxMessageSize: 100 * MB,
    maxConnections: 200,
    maxConnectionsPerClient: 200,
    maxMessagesPerMinute: 1_000_000,
  },
  delivery: { smarthost: { host: '127.0.0.1', port: sink.port, security: 'none' } },
});

async function startEdge(sink: Sink): Promise<Target> {
  const options = {
    node: NODE,
    env: serviceEnv(),
    config: relayConfig(sink),
  };
  // Measured as a box runs it: started before, so its TLS certificates exist (only a first start makes them)
  const first = await launchRelay(options);
  await first.stop();
  coldCache(NODE);
  const relay = await launchRelay({ ...options, dir: first.dir });
  return {
    name: 'edge-relay',
    port: relay.smtpPort,
    roots: () => [relay.process.pid!],
    async stop() {
      await relay.stop();
      rmSync(relay.dir, { recursive: true, force: true });
    },
  };
}

/** The design card's libraries alone (see bench/floor.mjs): the steps edge-relay takes per message, without its own work */
async function startFloor(sink: Sink): Promise<Target> {
  const dir = mkdtempSync(path.join(tmpdir(), 'edge-relay-bench-floor-'));
  const port = await freePort();
  coldCache(NODE);
  const child = spawn(NODE, [path.join(HERE, 'floor.mjs'), String(port), String(sink.port), dir], {
    stdio: ['ignore', 'inherit', 'inherit'],
    env: { ...process.env, ...serviceEnv() },
  });
  await waitListening(port);
  return {
    name: 'floor',
    port,
    roots: () => [child.pid!],
    async stop() {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      await exited;
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** The single executable as the service starts it (the unit's NODE_OPTIONS), started once before like startEdge */
async function startSea(sink: Sink): Promise<Target> {
  const dir = mkdtempSync(path.join(tmpdir(), 'edge-relay-bench-sea-'));
  const configFile = path.join(dir, 'config.json');
  writeFileSync(configFile, JSON.stringify(testConfig(path.join(dir, 'data'), relayConfig(sink))));
  const serve = () =>
    serveUntilRunning([SEA!, 'serve', '--config', configFile], {
      cwd: dir,
      env: { ...process.env, ...serviceEnv() },
      timeoutMs: 30_000,
    });
  const stop = async (served: Awaited<ReturnType<typeof serve>>) => {
    served.child.kill('SIGTERM');
    await served.exited;
  };
  await stop(await serve());
  coldCache(SEA!);
  const served = await serve();
  return {
    name: 'single-executable',
    port: served.smtpPort,
    roots: () => [served.child.pid!],
    async stop() {
      await stop(served);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
type Figures = Map<string, [number, string]>;

async function measure(target: Target, sink: Sink): Promise<Figures> {
  const figures: Figures = new Map();
  const put = (name: string, value: number, unit: string) => {
    figures.set(name, [value, unit]);
    console.log(`${target.name}.${name} ${Number(value.toFixed(2))} ${unit}`);
  };
  await sleep(IDLE_SETTLE_MS);
  put('idle_rss', treeRssKb(target.roots()) / 1024, 'MB');

  const warm = sink.count();
  const latencyMs = await smtpSource(target.port, {
    sessions: 1,
    messages: LATENCY_MESSAGES,
    bytes: 2048,
  });
  put('single_session_latency', latencyMs / LATENCY_MESSAGES, 'ms/msg');
  await sink.waitFor(warm + LATENCY_MESSAGES, 60_000);

  await sleep(1000);
  const before = sink.count();
  const sampler = sampleMemory(target.roots);
  const started = nowMs();
  const acceptMs = await smtpSource(target.port, { sessions: 20, messages: MESSAGES, bytes: 2048 });
  const relayedAt = await sink.waitFor(before + MESSAGES, 300_000);
  const loaded = sampler.stop();
  put('accept_rate_20_sessions', MESSAGES / (acceptMs / 1000), 'msg/s');
  put('relay_rate_end_to_end', MESSAGES / ((relayedAt - started) / 1000), 'msg/s');
  put('peak_rss_under_load', loaded.rssKb / 1024, 'MB');
  put('peak_pss_under_load', loaded.pssKb / 1024, 'MB');

  const big = sampleMemory(target.roots, 10);
  const bigMs = await smtpSource(target.port, { sessions: 1, messages: 1, bytes: 25 * MB });
  put('accept_25mb', bigMs / 1000, 's');
  put('peak_rss_25mb', big.stop().rssKb / 1024, 'MB');
  return figures;
}

/** Peak RSS for one message of `size` on a fresh instance (so earlier peaks don't hide it) */
async function peakFor(start: () => Promise<Target>, sizeMb: number): Promise<number> {
  const target = await start();
  try {
    await sleep(1000);
    const sampler = sampleMemory(target.roots, 10);
    await smtpSource(target.port, { sessions: 1, messages: 1, bytes: sizeMb * MB });
    await sleep(500);
    const sampled = sampler.stop().rssKb;
    // For a single process the kernel's own high-water mark is exact
    const roots = target.roots();
    const peak = target.name === 'postfix' ? sampled : Math.max(sampled, hwmKb(roots[0]!));
    console.log(`${target.name}.peak_rss_${sizeMb}mb ${(peak / 1024).toFixed(2)} MB`);
    return peak / 1024;
  } finally {
    await target.stop();
  }
}

const SEA_NAME = 'single-executable';

function table(results: Map<string, Figures>): void {
  const higherIsBetter = new Set(['accept_rate_20_sessions', 'relay_rate_end_to_end']);
  const [postfix, floor, edge, sea] = (['postfix', 'floor', 'edge-relay', SEA_NAME] as const).map(
    (name) => results.get(name),
  );
  const ratio = (value: number | undefined, base: number | undefined) =>
    value !== undefined && base ? (value / base).toFixed(2) : '-';
  const rows = [
    [
      'metric',
      'postfix',
      'floor',
      'edge-relay',
      SEA_NAME,
      'floor/postfix',
      'edge/postfix',
      'sea/postfix',
      'better',
    ],
  ];
  for (const [name, [value, unit]] of edge!) {
    const [p, f, e] = [postfix!.get(name)?.[0], floor!.get(name)?.[0], sea?.get(name)?.[0]];
    const cell = (v: number | undefined) => (v === undefined ? '-' : v.toFixed(2));
    rows.push([
      `${name} (${unit})`,
      cell(p),
      cell(f),
      cell(value),
      cell(e),
      ratio(f, p),
      ratio(value, p),
      ratio(e, p),
      higherIsBetter.has(name) ? 'higher' : 'lower',
    ]);
  }
  printRows(rows);
}

function printRows(rows: string[][]): void {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  console.log('');
  for (const row of rows) console.log(row.map((cell, i) => cell.padEnd(widths[i]!)).join('  '));
}

/** The figures of issue #13's table, side by side, with its targets */
function issueTable(results: Map<string, Figures>, card: Map<string, CardFigures>): void {
  const memory = (target: string, name: string) => results.get(target)?.get(name)?.[0];
  const onCard = (target: string, name: keyof CardFigures) => card.get(target)?.[name];
  const rows: [string, (target: string) => number | undefined, string][] = [
    [
      'flushes per message, 4 ms card, 20 sessions',
      (t) => onCard(t, 'slowsync_flushes_per_msg'),
      '<= 0.5',
    ],
    [
      'device flushes per message, loop ext4, 20 sessions',
      (t) => onCard(t, 'device_flushes_per_msg'),
      '<= 1.0',
    ],
    ['KiB written to the device per message', (t) => onCard(t, 'device_kib_per_msg'), '<= 10'],
    ['accept, 4 ms card, msg/s', (t) => onCard(t, 'slowsync_accept_rate'), '>= 1.5x Postfix'],
    [
      'relayed end to end, 4 ms card, msg/s',
      (t) => onCard(t, 'slowsync_relay_rate'),
      '>= 1.2x Postfix',
    ],
    [
      'one session, 4 ms card, ms per message',
      (t) => onCard(t, 'slowsync_single_session_latency'),
      '<= 1x Postfix',
    ],
    ['idle RSS, MB', (t) => memory(t, 'idle_rss'), '<= 60'],
    ['peak PSS under load, MB', (t) => memory(t, 'peak_pss_under_load'), '<= 100'],
  ];
  const targets = ['postfix', 'floor', 'edge-relay', SEA_NAME];
  const cell = (v: number | undefined) => (v === undefined ? '-' : v.toFixed(2));
  console.log(
    '\nissue #13 (card figures: bin/edge-relay, the single executable runs the same code; on the card the floor stores each message in a pre-zeroed journal, elsewhere in a file each)',
  );
  printRows([
    ['per relayed message', ...targets, 'floor/postfix', 'edge/postfix', 'target'],
    ...rows.map(([label, get, target]) => [
      label,
      ...targets.map((t) => cell(get(t))),
      ratioOf(get('floor'), get('postfix')),
      ratioOf(get('edge-relay'), get('postfix')),
      target,
    ]),
  ]);
}

const ratioOf = (value: number | undefined, base: number | undefined) =>
  value !== undefined && base ? `${(value / base).toFixed(2)}x` : '-';

/** The queue as an SD card sees it (bench/card.ts): Postfix, the floor (journal store) and edge-relay */
async function cardTable(sink: Sink): Promise<Map<string, CardFigures>> {
  const figures = new Map<string, CardFigures>();
  for (const [name, target] of [
    ['postfix', postfixOnCard(freePort)],
    ['floor', floorOnCard(freePort, process.execPath, serviceEnv())],
    ['edge-relay', edgeRelayOnCard(path.join(HERE, '..'), serviceEnv())],
  ] as const) {
    const result = await cardFigures(target, sink);
    for (const [figure, value] of Object.entries(result))
      console.log(
        `${name}.${figure} ${value.toFixed(2)} ${CARD_UNITS[figure as keyof CardFigures]}`,
      );
    figures.set(name, result);
  }
  const [postfix, floor, edge] = (['postfix', 'floor', 'edge-relay'] as const).map(
    (name) => figures.get(name)!,
  );
  printRows([
    [
      'card (loop-mounted ext4; slowsync: 4 ms per flush)',
      'postfix',
      'floor',
      'edge-relay',
      'floor/postfix',
      'edge/postfix',
    ],
    ...(Object.keys(CARD_UNITS) as (keyof CardFigures)[]).map((key) => [
      `${key} (${CARD_UNITS[key]})`,
      postfix![key].toFixed(2),
      floor![key].toFixed(2),
      edge![key].toFixed(2),
      ratioOf(floor![key], postfix![key]),
      ratioOf(edge![key], postfix![key]),
    ]),
  ]);
  return figures;
}

async function main(): Promise<void> {
  const sink = await startSink(await freePort());
  const results = new Map<string, Figures>();
  try {
    for (const start of [startPostfix, startFloor, startEdge, ...(SEA ? [startSea] : [])]) {
      const target = await start(sink);
      try {
        results.set(target.name, await measure(target, sink));
      } finally {
        await target.stop();
      }
    }
    for (const [name, start] of [
      ['postfix', startPostfix],
      ['floor', startFloor],
      ['edge-relay', startEdge],
    ] as const) {
      const figures = results.get(name)!;
      const p30 = await peakFor(() => start(sink), 30);
      const p60 = await peakFor(() => start(sink), 60);
      figures.set('peak_rss_30mb', [p30, 'MB']);
      figures.set('peak_rss_60mb', [p60, 'MB']);
      figures.set('peak_rss_60mb_minus_30mb', [p60 - p30, 'MB']);
      console.log(`${name}.peak_rss_60mb_minus_30mb ${(p60 - p30).toFixed(2)} MB`);
    }
    table(results);
    issueTable(results, await cardTable(sink));
  } finally {
    sink.stop();
  }
}

await main();
