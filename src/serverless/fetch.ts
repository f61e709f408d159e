/**
 * pagent's services as a fetch handler (`pagent/fetch`: `(Request) => Promise<Response>`, for
 * platforms that speak the Fetch API), in request-response mode, configured by the environment
 * (see ./function.ts). `export default { fetch }` is the module shape Workers-style runtimes load.
 */
import "../polyfill.js";
import * as restate from "@restatedev/restate-sdk/fetch";
import { functionEndpoint } from "./function.js";

export const fetch = restate.createEndpointHandler(
  functionEndpoint(process.env, process.cwd(), (key) =>
    restate.createEndpointHandler({ services: [], identityKeys: [key] }),
  ),
);

export default { fetch };
