/** edge-relay serve: runs until SIGTERM/SIGINT, then stops cleanly */
import { startRelay } from '../app.js';
import { createLogger } from '../log.js';
import { openConfig, type CommandContext } from './context.js';

export async function serveCommand(ctx: CommandContext): Promise<number> {
  const { store } = await openConfig(ctx);
  const log = createLogger();
  const relay = await startRelay(store, log);
  await new Promise<void>((resolve) => {
    const onSignal = (signal: NodeJS.Signals) => {
      log.info({ signal }, 'Stopping');
      process.off('SIGTERM', onSignal);
      process.off('SIGINT', onSignal);
      resolve();
    };
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);
  });
  await relay.stop();
  // Sockets the library is still tearing down must not hold the exit past the 10 s promise
  process.exit(0);
}
