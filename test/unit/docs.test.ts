/**
 * The docs check: README.md and docs/ are the one source of the user docs, so
 * - every relative link and every #anchor resolves (GitHub's heading anchors),
 *   also the docs pages the admin page's views name;
 * - every page states the ports of the appliance and of `make run`, and the
 *   numbers agree with image/config.json and the embedded defaults;
 * - the configuration reference lists exactly the keys of the schema, with the
 *   embedded defaults.
 * Each failure names the file and the link, port or key.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import { DEFAULT_CONFIG } from '../../src/config/defaults.js';
import { configSchema } from '../../src/config/schema.js';

const ROOT = path.resolve(import.meta.dirname, '../..');
const REFERENCE = 'docs/configuration.md';
const BENCH_RESULTS = 'docs/bench/';

const read = (file: string): string => readFileSync(path.join(ROOT, file), 'utf8');

function filesUnder(dir: string, suffix: string): string[] {
  return readdirSync(path.join(ROOT, dir), { recursive: true, encoding: 'utf8' })
    .filter((name) => name.endsWith(suffix))
    .map((name) => path.posix.join(dir, name.split(path.sep).join('/')))
    .sort();
}

const markdownFiles = (): string[] => ['README.md', ...filesUnder('docs', '.md')];

/** Fenced code blocks are examples, not links or headings */
const withoutFences = (text: string): string =>
  text.replace(/^(```|~~~)[^\n]*\n[\s\S]*?^\1[^\n]*$/gm, '');
const withoutCodeSpans = (text: string): string => text.replace(/`[^`\n]*`/g, '');

/** GitHub's anchor for a heading: the rendered text, lowercased, punctuation dropped, spaces to hyphens */
function slugOf(heading: string): string {
  const rendered = heading
    .replace(/!?\[([^\]]*)\]\([^)]*\)/g, '$1')
    .replace(/[`*]/g, '')
    .replace(/<[^>]+>/g, '');
  return rendered
    .trim()
    .toLowerCase()
    .replace(/[^\p{L}\p{M}\p{N}\p{Pc} -]/gu, '')
    .replace(/ /g, '-');
}

/** Every anchor a page offers: heading slugs (repeats get -1, -2 ...) and explicit id/name attributes */
function anchorsOf(text: string): Set<string> {
  const anchors = new Set<string>();
  const seen = new Map<string, number>();
  for (const [, heading] of withoutFences(text).matchAll(/^#{1,6}\s+(.+?)\s*#*\s*$/gm)) {
    const slug = slugOf(heading!);
    const count = seen.get(slug) ?? 0;
    seen.set(slug, count + 1);
    anchors.add(count ? `${slug}-${count}` : slug);
  }
  for (const [, id] of text.matchAll(/<a\s+(?:id|name)="([^"]+)"/g)) anchors.add(id!);
  return anchors;
}

/** Targets of inline links and images, and of reference definitions */
function linksOf(text: string): string[] {
  const prose = withoutCodeSpans(withoutFences(text));
  const inline = [...prose.matchAll(/\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)/g)].map(
    (match) => match[1]!,
  );
  const references = [...prose.matchAll(/^\s*\[[^\]]+\]:\s*(\S+)/gm)].map((match) => match[1]!);
  return [...inline, ...references];
}

const isExternal = (target: string): boolean => /^[a-z][a-z0-9+.-]*:/i.test(target);

/** Why `target`, linked from `from`, does not resolve; undefined when it does */
function brokenLink(from: string, target: string): string | undefined {
  const [file = '', anchor] = target.split('#', 2);
  const resolved = file
    ? path.posix.normalize(path.posix.join(path.posix.dirname(from), decodeURIComponent(file)))
    : from;
  if (resolved.startsWith('..')) return `points outside the repository (${resolved})`;
  if (!existsSync(path.join(ROOT, resolved))) return `no file "${resolved}"`;
  if (anchor === undefined) return undefined;
  if (!resolved.endsWith('.md') || statSync(path.join(ROOT, resolved)).isDirectory())
    return `an anchor into "${resolved}", which is not a Markdown page`;
  return anchorsOf(read(resolved)).has(anchor)
    ? undefined
    : `no heading with anchor "#${anchor}" in ${resolved}`;
}

describe('links and anchors', () => {
  test('GitHub heading anchors', () => {
    assert.equal(
      slugOf('When a device "can\'t send": read its transcript'),
      'when-a-device-cant-send-read-its-transcript',
    );
    assert.equal(slugOf('`smtp`: devices sending to the box'), 'smtp-devices-sending-to-the-box');
    assert.equal(slugOf('2. App password on `smtp.gmail.com`'), '2-app-password-on-smtpgmailcom');
    assert.equal(
      slugOf('Google Workspace / Gmail with an app password'),
      'google-workspace--gmail-with-an-app-password',
    );
    assert.deepEqual(
      [...anchorsOf('# A\n## Ports\n```\n# not a heading\n```\n## Ports\n')],
      ['a', 'ports', 'ports-1'],
    );
  });

  test('every relative link and #anchor in README.md and docs/ resolves', () => {
    const problems = markdownFiles().flatMap((file) =>
      linksOf(read(file))
        .filter((target) => !isExternal(target))
        .flatMap((target) => {
          const why = brokenLink(file, target);
          return why ? [`${file}: link "${target}": ${why}`] : [];
        }),
    );
    assert.deepEqual(problems, []);
  });

  test('the docs pages the admin page names exist, with their anchors', () => {
    const problems = filesUnder('src/web', '.ts').flatMap((file) =>
      [...read(file).matchAll(/docs\/[\w./-]+\.md(?:#[\w-]+)?/g)].flatMap(([target]) => {
        const why = brokenLink('README.md', target);
        return why ? [`${file}: names "${target}": ${why}`] : [];
      }),
    );
    assert.deepEqual(problems, []);
  });
});

describe('ports', () => {
  const appliance = JSON.parse(read('image/config.json')) as Record<
    'smtp' | 'pop3' | 'web',
    { port: number }
  >;
  const LISTENERS = ['smtp', 'pop3', 'web'] as const;
  /** A ports table row: | ... (`smtp.port`) ... | appliance | make run | */
  const PORT_ROW = /^\|[^|\n]*\(`(smtp|pop3|web)\.port`\)[^|\n]*\|\s*(\d+)\s*\|\s*(\d+)\s*\|\s*$/gm;
  const pages = () => markdownFiles().filter((file) => !file.startsWith(BENCH_RESULTS));

  test('every ports table agrees with image/config.json (appliance) and the embedded defaults (make run)', () => {
    const problems = pages().flatMap((file) =>
      [...read(file).matchAll(PORT_ROW)].flatMap(([, listener, onAppliance, onMakeRun]) => {
        const key = listener as (typeof LISTENERS)[number];
        const want = [appliance[key].port, DEFAULT_CONFIG[key].port];
        const got = [Number(onAppliance), Number(onMakeRun)];
        return got.join() === want.join()
          ? []
          : [
              `${file}: ${key}.port is ${got.join(' / ')} (appliance / make run), the configs say ${want.join(' / ')}`,
            ];
      }),
    );
    assert.deepEqual(problems, []);
  });

  test('every page states the ports of the appliance and of make run', () => {
    const problems = pages().flatMap((file) => {
      const stated = new Set([...read(file).matchAll(PORT_ROW)].map((match) => match[1]));
      return LISTENERS.filter((key) => !stated.has(key)).map(
        (key) => `${file}: no ports table row for ${key}.port (appliance and make run)`,
      );
    });
    assert.deepEqual(problems, []);
  });
});

interface SchemaNode {
  _zod: {
    def: {
      type: string;
      shape?: Record<string, SchemaNode>;
      valueType?: SchemaNode;
      element?: SchemaNode;
      innerType?: SchemaNode;
    };
  };
}

/** Every key path of the schema: "*" stands for a record's keys, "[]" for a list's items */
function schemaKeys(
  node: SchemaNode,
  at: string,
  out: Map<string, 'leaf' | 'group'>,
): Map<string, 'leaf' | 'group'> {
  const def = node._zod.def;
  const child = (suffix: string) => (at ? `${at}${suffix}` : suffix.replace(/^\./, ''));
  if (def.type === 'optional' && def.innerType) return schemaKeys(def.innerType, at, out);
  if (def.type === 'object' && def.shape) {
    if (at) out.set(at, 'group');
    for (const [key, value] of Object.entries(def.shape)) schemaKeys(value, child(`.${key}`), out);
  } else if (def.type === 'record' && def.valueType) {
    out.set(at, 'group');
    schemaKeys(def.valueType, child('.*'), out);
  } else if (
    def.type === 'array' &&
    def.element &&
    ['object', 'record'].includes(def.element._zod.def.type)
  ) {
    out.set(at, 'group');
    schemaKeys(def.element, child('[]'), out);
  } else {
    out.set(at, 'leaf');
  }
  return out;
}

/** Rows of the reference's `| Key | Default | ... |` tables: the key as written and the default cell */
function referenceRows(text: string): { key: string; defaultCell: string }[] {
  const rows: { key: string; defaultCell: string }[] = [];
  let inKeyTable = false;
  for (const line of text.split('\n')) {
    if (!line.startsWith('|')) inKeyTable = false;
    else if (/^\|\s*Key\s*\|\s*Default\s*\|/.test(line)) inKeyTable = true;
    else if (inKeyTable && !/^\|\s*-/.test(line)) {
      const [, keyCell = '', defaultCell = ''] = line.split(/(?<!\\)\|/);
      rows.push({ key: keyCell.trim().replace(/^`|`$/g, ''), defaultCell: defaultCell.trim() });
    }
  }
  return rows;
}

/** `smtp.devices.<address>.allowDomains` -> `smtp.devices.*.allowDomains` */
const schemaFormOf = (key: string): string => key.replace(/<[^>]+>/g, '*');

function defaultAt(key: string): unknown {
  return key
    .split('.')
    .reduce<unknown>(
      (node, part) => (node as Record<string, unknown> | undefined)?.[part],
      DEFAULT_CONFIG,
    );
}

/** The first `code span` of a Default cell, read as JSON where it parses, else as text */
function documentedDefault(cell: string): { value: unknown } | undefined {
  const code = /`([^`]*)`/.exec(cell)?.[1];
  if (code === undefined) return undefined;
  try {
    return { value: JSON.parse(code) };
  } catch {
    return { value: code };
  }
}

describe('configuration reference', () => {
  const keys = schemaKeys(configSchema as unknown as SchemaNode, '', new Map());
  const rows = referenceRows(read(REFERENCE));

  test('the schema walk finds the keys the schema has', () => {
    assert.equal(keys.get('smtp.port'), 'leaf');
    assert.equal(keys.get('smtp.devices.*.allowDomains'), 'leaf');
    assert.equal(keys.get('mailbox.copies[].networks'), 'leaf');
    assert.equal(keys.get('delivery.domains.*.rewrite.headerFrom'), 'leaf');
    assert.equal(keys.get('delivery.oauth2'), 'group');
  });

  test(`every key in ${REFERENCE} exists in src/config/schema.ts`, () => {
    const problems = rows
      .filter((row) => !keys.has(schemaFormOf(row.key)))
      .map((row) => `${REFERENCE}: "${row.key}" is not a key of the config schema`);
    const counts = new Map<string, number>();
    for (const row of rows) counts.set(row.key, (counts.get(row.key) ?? 0) + 1);
    problems.push(
      ...[...counts]
        .filter(([, count]) => count > 1)
        .map(([key]) => `${REFERENCE}: "${key}" has more than one row`),
    );
    assert.deepEqual(problems, []);
  });

  test(`every key of src/config/schema.ts has a row in ${REFERENCE}`, () => {
    const documented = new Set(rows.map((row) => schemaFormOf(row.key)));
    const problems = [...keys]
      .filter(([key, kind]) => kind === 'leaf' && !documented.has(key))
      .map(
        ([key]) =>
          `${REFERENCE}: no row for config key "${key.replaceAll('*', '<name>')}" (add it to the table of its section)`,
      );
    assert.deepEqual(problems, []);
  });

  test(`the defaults in ${REFERENCE} are those of src/config/defaults.ts`, () => {
    const problems = rows.flatMap(({ key, defaultCell }) => {
      const want = defaultAt(key);
      if (want === undefined || key.includes('<')) return [];
      const got = documentedDefault(defaultCell);
      if (!got)
        return [
          `${REFERENCE}: "${key}" gives no default in \`code\`; the default is ${JSON.stringify(want)}`,
        ];
      const same = JSON.stringify(got.value) === JSON.stringify(want);
      return same
        ? []
        : [
            `${REFERENCE}: "${key}" says the default is ${JSON.stringify(got.value)}; it is ${JSON.stringify(want)}`,
          ];
    });
    assert.deepEqual(problems, []);
  });
});
