/**
 * pagent's services as an AWS Lambda handler (`pagent/lambda`): deploy with `export { handler } from
 * "pagent/lambda"`, configured by the function's environment (see ./function.ts). Lambda invokes in
 * request-response mode: the job suspends while it waits and costs nothing.
 */
import "../polyfill.js";
import * as restate from "@restatedev/restate-sdk/lambda";
import { functionEndpoint } from "./function.js";

export const handler = restate.createEndpointHandler(
  functionEndpoint(process.env, process.cwd(), (key) =>
    restate.createEndpointHandler({ services: [], identityKeys: [key] }),
  ),
);
