/** The devices page and /api/devices: the inventory, and naming a device */
import { UsageError } from '../../errors.js';
import { jsonFields, textField } from '../body.js';
import type { WebApp, WebServices } from '../context.js';
import { devicesView } from '../views/devices.js';
import { field, redirectWith, render } from './render.js';

/** What these routes use of the relay */
export type DeviceServices = Pick<WebServices, 'store' | 'devices'>;

export function deviceRoutes(app: WebApp, state: DeviceServices): void {
  app.get('/devices', (c) => {
    const devices = state.devices.list();
    const rules = state.store.config.smtp.devices;
    return render(c, state, 'devices', 'Devices', (csrf) =>
      devicesView(devices, (address) => rules[address], csrf),
    );
  });
  app.post('/devices/name', async (c) => {
    try {
      const device = await state.devices.rename(await field(c, 'address'), await field(c, 'name'));
      return redirectWith(c, '/devices', {
        kind: 'ok',
        text: `Saved the name of ${device.address}`,
      });
    } catch (err) {
      if (err instanceof UsageError)
        return redirectWith(c, '/devices', { kind: 'error', text: err.message });
      throw err;
    }
  });

  app.get('/api/devices', (c) => c.json(state.devices.list()));
  app.post('/api/devices/:address/name', async (c) => {
    return c.json(
      await state.devices.rename(c.req.param('address'), textField(await jsonFields(c), 'name')),
    );
  });
}
