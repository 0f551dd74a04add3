/** Renders a page in the frame, with the session's CSRF token and flash message */
import { VERSION } from '../../version.js';
import { sessionOf, takeFlash, type WebContext, type WebServices } from '../context.js';
import { formBody } from '../body.js';
import type { Flash } from '../sessions.js';
import { page, type Html, type NavKey } from '../views/layout.js';

/** A page's frame shows the relay's hostname */
export type PageServices = Pick<WebServices, 'store'>;

export function render(
  c: WebContext,
  state: PageServices,
  active: NavKey,
  title: string,
  body: (csrf: string) => Html,
  status: 200 | 400 | 404 | 409 = 200,
) {
  const session = sessionOf(c);
  const frame = {
    title,
    hostname: state.store.config.hostname,
    version: VERSION,
    nav: { active, csrf: session.csrf },
    flash: takeFlash(session),
  };
  return c.html(page(frame, body(session.csrf)), status);
}

/** Post/redirect/get: the message shows on the next page */
export function redirectWith(c: WebContext, to: string, flash: Flash) {
  sessionOf(c).flash = flash;
  return c.redirect(to, 303);
}

/** A form's field as one string ("" when absent) */
export async function field(c: WebContext, name: string): Promise<string> {
  const value = (await formBody(c))[name];
  return typeof value === 'string' ? value : '';
}

/** A form's repeated field (checkboxes) as strings */
export async function fields(c: WebContext, name: string): Promise<string[]> {
  const value = (await formBody(c, { all: true }))[name];
  return (Array.isArray(value) ? value : [value]).filter((v): v is string => typeof v === 'string');
}
