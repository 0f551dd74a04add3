/**
 * Preloaded into a relay under test (`node --import`): appends the URL of
 * every module the process loads to the file named by EDGE_RELAY_MODULE_LOG,
 * so a test can see what an idle relay holds without any product surface.
 */
import { register } from 'node:module';

register('./module-log-hooks.mjs', {
  parentURL: import.meta.url,
  data: { file: process.env.EDGE_RELAY_MODULE_LOG },
});
