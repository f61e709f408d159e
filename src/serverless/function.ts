/**
 * What a serverless function hosts, from its environment: the function's own process boundary (it
 * has no command line, so this is where it reads its variables), resolved exactly as `pagent serve`
 * resolves its flags (src/serve-config.ts). Variables in place of flags:
 *
 * - `PAGENT_SERVICES`: `job`, `tasks` or `all` (default), as `--services`.
 * - `PAGENT_ALLOW_BASE_URL`, `PAGENT_ALLOW_ROOT`, `PAGENT_ALLOW_HOST`: comma-separated, as the
 *   repeatable `--allow-*` flags; `PAGENT_CONFIG` as `--config` (default `./pagent.config.json` in
 *   the function's directory).
 * - `RESTATE_IDENTITY_KEYS` as for `pagent serve`; required, since a function URL is reachable from
 *   anywhere, unless `PAGENT_ALLOW_UNSIGNED=1` (e.g. an ARN registration, where IAM guards the call).
 * - The model's key (`OPENAI_API_KEY`, a profile's `apiKeyEnv`) and `OPENAI_BASE_URL` as always.
 */
import { createServices } from "../../services/index.js";
import { loadConfigFile, resolveConfig, type Env } from "../config.js";
import { checkIdentityKeys, resolveServe } from "../serve-config.js";

/** The variable that stands for each flag, so an error names what the function's operator sets. */
const VARIABLE_OF: Record<string, string> = {
  "--services": "PAGENT_SERVICES",
  "--allow-base-url": "PAGENT_ALLOW_BASE_URL",
  "--allow-root": "PAGENT_ALLOW_ROOT",
  "--allow-host": "PAGENT_ALLOW_HOST",
  "--identity-key": "RESTATE_IDENTITY_KEYS",
  "--config": "PAGENT_CONFIG",
};

const list = (value: string | undefined) =>
  (value ?? "")
    .split(",")
    .map((v) => v.trim())
    .filter(Boolean);

/**
 * The `services` and `identityKeys` of the SDK's `createEndpointHandler`. `tryKey` builds a handler
 * with one key (the SDK flavour of the caller decides; see checkIdentityKeys). Throws with a
 * `pagent:` message on a bad setting, which the platform shows as the function's start-up error.
 */
export function functionEndpoint(env: Env, cwd: string, tryKey: (key: string) => void) {
  try {
    const config = resolveConfig(
      { config: env.PAGENT_CONFIG },
      env,
      loadConfigFile(env.PAGENT_CONFIG, cwd),
    );
    const settings = resolveServe(
      {
        host: "0.0.0.0",
        identityKey: [],
        allowBaseUrl: list(env.PAGENT_ALLOW_BASE_URL),
        allowRoot: list(env.PAGENT_ALLOW_ROOT),
        allowHost: list(env.PAGENT_ALLOW_HOST),
        services: env.PAGENT_SERVICES,
      },
      config,
      env,
      cwd,
    );
    checkIdentityKeys(settings.identityKeys, tryKey);
    if (settings.identityKeys.length === 0 && env.PAGENT_ALLOW_UNSIGNED !== "1") {
      throw new Error(
        "set RESTATE_IDENTITY_KEYS to the Restate server's public key (publickeyv1_...) so only that server can call this function, or PAGENT_ALLOW_UNSIGNED=1 when something else guards it (an ARN registration through IAM)",
      );
    }
    const { all } = createServices(settings.credentials, settings.grants, settings.services);
    return { services: all, identityKeys: settings.identityKeys };
  } catch (error) {
    // No `cause`: the platform prints it again under the same message.
    const message = (error as Error).message.replace(
      /--[a-z-]+/g,
      (flag) => VARIABLE_OF[flag] ?? flag,
    );
    throw new Error(`pagent: ${message}`);
  }
}
