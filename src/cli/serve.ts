/** edge-relay serve: runs until SIGTERM/SIGINT, then stops cleanly */
import { setFlagsFromString } from 'node:v8';
import { startRelay } from '../app.js';
import { createLogger } from '../log.js';
import { openConfig, type CommandContext } from './context.js';

/**
 * V8 by default lets the old generation grow to several times the live data
 * before a full collection, so after a burst the relay's garbage stays
 * resident; optimizing for size collects earlier, at no speed cost we could
 * measure (figures: docs/performance.md). Node refuses the flag in
 * NODE_OPTIONS, so the server sets it itself: the unit, the single
 * executable and bin/edge-relay all run with it
 */
const V8_FLAGS = '--optimize-for-size';

export async function serveCommand(ctx: CommandContext): Promise<number> {
  setFlagsFromString(V8_FLAGS);
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
