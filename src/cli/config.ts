/** edge-relay config check | reload */
import path from 'node:path';
import { UsageError } from '../errors.js';
import { wideNetworks, wideNetworksWarning } from '../config/networks.js';
import { signalServer } from '../util/serve-lock.js';
import { openConfig, type CommandContext } from './context.js';

export async function configCommand(ctx: CommandContext): Promise<number> {
  if (ctx.args[0] === 'check') return check(ctx);
  if (ctx.args[0] === 'reload') return reload(ctx);
  throw new UsageError(
    `Unknown config command "${ctx.args[0] ?? ''}"; use "config check" or "config reload"`,
  );
}

/** Checks the file first, so a broken one is reported here and not only in the server's log */
async function reload(ctx: CommandContext): Promise<number> {
  const { config, location } = await openConfig(ctx);
  const pid = await signalServer(path.resolve(config.dataDir), 'SIGHUP');
  if (!pid) {
    ctx.out(
      `No edge-relay is serving ${path.resolve(config.dataDir)}; ${location.origin} is used when it starts`,
    );
    return 1;
  }
  ctx.out(`Asked edge-relay (pid ${pid}) to read ${location.origin} again`);
  return 0;
}

async function check(ctx: CommandContext): Promise<number> {
  const { config, location } = await openConfig(ctx);
  ctx.out(`Configuration OK: ${location.origin}`);
  const upstream =
    config.delivery.mode === 'mx'
      ? 'direct MX delivery'
      : config.delivery.smarthost.host
        ? `smarthost ${config.delivery.smarthost.host}:${config.delivery.smarthost.port} (${config.delivery.smarthost.security})`
        : 'none yet: mail will wait in the queue until an upstream is set';
  ctx.out(
    `  SMTP intake  ${config.smtp.host}:${config.smtp.port}\n  upstream     ${upstream}\n  data dir     ${config.dataDir}`,
  );
  const open = wideNetworks(config.smtp.allowNetworks);
  if (open.length) ctx.out(`Warning: ${wideNetworksWarning(open)}`);
  return 0;
}
