/** The token store moved to src/admin/tokens.ts (the CLI uses it too); kept until web/context.ts and web/start.ts import it from there */
export { ApiTokens, type TokenInfo } from '../admin/tokens.js';
