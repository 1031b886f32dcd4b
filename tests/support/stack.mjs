// Tests start the same local stack a developer runs, on free ports with fresh state.
// `startTestStack(opts)` → { issuer, idpUrl, todoApiUrl, mcpOrigin, mcpUrl, sseUrl, stop() };
// see local/stack.mjs for the options. Set STACK_PREBUILT=1 when the workers are already built.
export { startStack, startTestStack, freePort, waitForHttp, parseDotenv, STANDIN, ROOT } from '../../local/stack.mjs';
