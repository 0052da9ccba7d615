/**
 * kubeconfig `exec` credential plugins (client-go's client-authentication protocol): run the
 * command with `KUBERNETES_EXEC_INFO`, read an `ExecCredential` from its stdout, cache it until
 * `status.expirationTimestamp`, run it again when the API server answers 401.
 */
import type { Credentials, CredentialSource } from "./client_config.ts";

export interface ExecConfig {
  command: string;
  args?: string[];
  env?: { name: string; value: string }[];
  apiVersion?: string;
  installHint?: string;
  provideClusterInfo?: boolean;
}

export interface ExecOptions {
  /** Directory of the kubeconfig: a relative command with a `/` is resolved against it. */
  baseDir: string;
  /** The cluster, for `provideClusterInfo`. */
  cluster?: { server: string; "certificate-authority-data"?: string };
  now?: () => number;
}

export class ExecCredentialSource implements CredentialSource {
  readonly #exec: ExecConfig;
  readonly #options: ExecOptions;
  #cached?: { creds: Credentials; expires?: number };

  constructor(exec: ExecConfig, options: ExecOptions) {
    this.#exec = exec;
    this.#options = options;
  }

  async get(refresh: boolean): Promise<Credentials> {
    const now = (this.#options.now ?? Date.now)();
    const c = this.#cached;
    if (c && !refresh && (c.expires === undefined || c.expires > now)) return c.creds;
    this.#cached = await this.#run();
    return this.#cached.creds;
  }

  async #run(): Promise<{ creds: Credentials; expires?: number }> {
    const exec = this.#exec;
    const apiVersion = exec.apiVersion ?? "client.authentication.k8s.io/v1";
    let command = exec.command;
    if (command.includes("/") && !command.startsWith("/")) {
      command = `${this.#options.baseDir}/${command}`;
    }
    const info = {
      apiVersion,
      kind: "ExecCredential",
      spec: {
        interactive: false,
        ...(exec.provideClusterInfo && this.#options.cluster &&
          { cluster: this.#options.cluster }),
      },
    };
    const env: Record<string, string> = { KUBERNETES_EXEC_INFO: JSON.stringify(info) };
    for (const e of exec.env ?? []) env[e.name] = e.value;
    let out: Deno.CommandOutput;
    try {
      out = await new Deno.Command(command, {
        args: exec.args ?? [],
        env,
        stdin: "null",
        stdout: "piped",
        stderr: "piped",
      }).output();
    } catch (err) {
      const hint = exec.installHint ? `: ${exec.installHint.trim()}` : "";
      throw new Error(`Cannot run kubeconfig exec plugin "${command}"${hint}`, { cause: err });
    }
    const stderr = new TextDecoder().decode(out.stderr).trim();
    if (!out.success) {
      throw new Error(
        `kubeconfig exec plugin "${command}" exited with status ${out.code}: ${
          JSON.stringify(stderr.slice(0, 300))
        }`,
      );
    }
    let cred;
    try {
      cred = JSON.parse(new TextDecoder().decode(out.stdout));
    } catch (err) {
      throw new Error(`kubeconfig exec plugin "${command}" printed no ExecCredential JSON`, {
        cause: err,
      });
    }
    if (cred?.kind !== "ExecCredential" || cred?.apiVersion !== apiVersion) {
      throw new Error(
        `kubeconfig exec plugin "${command}" returned kind ${JSON.stringify(cred?.kind)} ` +
          `apiVersion ${JSON.stringify(cred?.apiVersion)}; expected ExecCredential ${apiVersion}`,
      );
    }
    const status = cred.status ?? {};
    const creds: Credentials = {};
    if (typeof status.token === "string" && status.token !== "") creds.token = status.token;
    if (status.clientCertificateData && status.clientKeyData) {
      creds.cert = String(status.clientCertificateData);
      creds.key = String(status.clientKeyData);
    }
    if (!creds.token && !creds.cert) {
      throw new Error(
        `kubeconfig exec plugin "${command}" returned neither status.token nor ` +
          `status.clientCertificateData/clientKeyData`,
      );
    }
    const expires = status.expirationTimestamp
      ? Date.parse(String(status.expirationTimestamp))
      : undefined;
    return { creds, expires: Number.isNaN(expires) ? undefined : expires };
  }
}
