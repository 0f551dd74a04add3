/** edge-relay config check */
import { UsageError } from '../errors.js';
import { wideNetworks, wideNetworksWarning } from '../config/networks.js';
import { openConfig, type CommandContext } from './context.js';

export async function configCommand(ctx: CommandContext): Promise<number> {
  if (ctx.args[0] !== 'check') throw new UsageError(`Unknown config command "${ctx.args[0] ?? ''}"; use "config check"`);
  const { config, location } = await openConfig(ctx);
  ctx.out(`Configuration OK: ${location.origin}`);
  const upstream = config.delivery.mode === 'mx' ? 'direct MX delivery' : config.delivery.smarthost.host ? `smarthost ${config.delivery.smarthost.host}:${config.delivery.smarthost.port} (${config.delivery.smarthost.security})` : 'none yet: mail will wait in the queue until an upstream is set';
  ctx.out(`  SMTP intake  ${config.smtp.host}:${config.smtp.port}\n  upstream     ${upstream}\n  data dir     ${config.dataDir}`);
  const open = wideNetworks(config.smtp.allowNetworks);
  if (open.length) ctx.out(`Warning: ${wideNetworksWarning(open)}`);
  return 0;
}
