/**
 * The pre-flight check for Microsoft Graph: can the relay sign in, did the
 * admin grant the application permissions (the token's `roles` claim says
 * so), and is the sending mailbox there. Looking a mailbox up needs a
 * directory permission the relay does not ask for (User.Read.All): without
 * it the lookup is skipped, not failed.
 */
import type { Config } from '../../config/schema.js';
import { errorMessage } from '../../errors.js';
import type { AccessTokenSource } from '../../oauth/client.js';
import { parseAddress } from '../../route/address.js';
import type { Check } from '../preflight.js';
import { consentLink } from './graph-outcome.js';
import { GraphSession } from './graph-session.js';

/** The application permissions in an access token, or undefined when it is not a JWT (nothing to tell) */
export function tokenRoles(token: string): string[] | undefined {
  const payload = token.split('.')[1];
  if (!payload) return undefined;
  try {
    const claims = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as {
      roles?: unknown;
    };
    return Array.isArray(claims.roles)
      ? claims.roles.filter((r): r is string => typeof r === 'string')
      : [];
  } catch {
    return undefined;
  }
}

/** The mailbox mail for `domain` is sent from, when the settings say which */
function mailboxFor(config: Config, domain: string): string | undefined {
  const { graph, rewrite } = config.delivery;
  if (graph.sender === 'mailbox') return graph.mailbox;
  return parseAddress(rewrite.headerFrom)?.domain.toLowerCase() === domain
    ? rewrite.headerFrom
    : undefined;
}

function permissionCheck(config: Config, roles: string[] | undefined): Check | undefined {
  const link = consentLink(config.delivery.graph.tenant, config.delivery.graph.clientId);
  if (roles === undefined) return undefined;
  if (!roles.includes('Mail.Send'))
    return {
      name: 'graph',
      status: 'problem',
      summary:
        'The app signs in to Microsoft Graph but has no application permission Mail.Send: every message will be refused',
      fix: `Add Microsoft Graph > Application permissions > Mail.Send to the app and grant admin consent: ${link}`,
      records: [`roles: ${roles.join(', ') || 'none'}`],
    };
  if (!roles.includes('Mail.ReadWrite'))
    return {
      name: 'graph',
      status: 'warning',
      summary:
        'The app may send (Mail.Send) but not write drafts (Mail.ReadWrite): messages over 3 MB will be refused',
      fix: `Add the application permission Mail.ReadWrite and grant admin consent: ${link}`,
      records: [`roles: ${roles.join(', ')}`],
    };
  return undefined;
}

export async function graphCheck(
  config: Config,
  tokens: AccessTokenSource,
  domain: string,
): Promise<Check> {
  let token: string;
  try {
    token = await tokens.accessToken({ force: false });
  } catch (err) {
    return {
      name: 'graph',
      status: 'problem',
      summary: `The relay cannot sign in to Microsoft Graph: ${errorMessage(err)}`,
      fix: 'Check the tenant, client ID and client secret under Settings > Microsoft Graph',
      records: [],
    };
  }
  const roles = tokenRoles(token);
  const permission = permissionCheck(config, roles);
  if (permission) return permission;
  const granted = roles ? [`roles: ${roles.join(', ')}`] : [];
  const mailbox = mailboxFor(config, domain);
  if (!mailbox)
    return {
      name: 'graph',
      status: 'ok',
      summary:
        'The relay signs in to Microsoft Graph with the permissions it needs; each message is sent from the mailbox of its From address',
      records: granted,
    };
  const reply = await new GraphSession(config, tokens, mailbox)
    .call({ method: 'GET', path: '?$select=mail' })
    .catch((err: unknown) => ({ status: 0, body: { error: { message: errorMessage(err) } } }));
  if (reply.status === 200)
    return {
      name: 'graph',
      status: 'ok',
      summary: `The relay signs in to Microsoft Graph and ${mailbox} is a mailbox it can send from`,
      records: granted,
    };
  if (reply.status === 404)
    return {
      name: 'graph',
      status: 'problem',
      summary: `There is no mailbox ${mailbox} in the tenant: Microsoft Graph cannot send from it`,
      fix: 'Create the mailbox (a shared mailbox needs no licence) or choose another one',
      records: granted,
    };
  return {
    name: 'graph',
    status: 'ok',
    summary: `The relay signs in to Microsoft Graph with the permissions it needs (the mailbox ${mailbox} could not be looked up without a directory permission: send a test mail)`,
    records: granted,
  };
}
