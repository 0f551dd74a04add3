/** GET /metrics: Prometheus text, with a session or an API token */
import type { WebApp, WebState } from '../context.js';

export function metricsRoutes(app: WebApp, state: WebState): void {
  app.get('/metrics', async (c) => c.body(await state.metrics.text(), 200, { 'Content-Type': state.metrics.contentType }));
}
