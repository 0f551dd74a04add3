/** GET /metrics: Prometheus text, with a session or an API token */
import type { WebApp, WebServices } from '../context.js';

/** What these routes use of the relay */
export type MetricsServices = Pick<WebServices, 'metrics'>;

export function metricsRoutes(app: WebApp, state: MetricsServices): void {
  app.get('/metrics', async (c) =>
    c.body(await state.metrics.text(), 200, { 'Content-Type': state.metrics.contentType }),
  );
}
