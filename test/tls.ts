/**
 * Throwaway TLS material for tests, made with `openssl` in a temp dir: a CA, a server certificate
 * for 127.0.0.1/localhost and a client certificate, all P-256. `await using` removes the dir.
 */

export interface TlsFiles extends AsyncDisposable {
  dir: string;
  caFile: string;
  serverCertFile: string;
  serverKeyFile: string;
  clientCertFile: string;
  clientKeyFile: string;
}

async function openssl(args: string[], cwd: string): Promise<void> {
  let out: Deno.CommandOutput;
  try {
    out = await new Deno.Command("openssl", { args, cwd, stdout: "piped", stderr: "piped" })
      .output();
  } catch (err) {
    throw new Error(`Cannot run openssl (apt-get install openssl)`, { cause: err });
  }
  if (!out.success) {
    throw new Error(
      `openssl ${args.join(" ")} failed: ${new TextDecoder().decode(out.stderr).trim()}`,
    );
  }
}

/** Issues `<name>.pem` + `<name>-key.pem` signed by the CA in `dir`; `cn` "" leaves the CN out. */
async function issue(dir: string, name: string, cn: string, extensions: string[]): Promise<void> {
  await openssl([
    "req",
    "-x509",
    "-newkey",
    "ec",
    "-pkeyopt",
    "ec_paramgen_curve:P-256",
    "-nodes",
    "-days",
    "2",
    "-subj",
    cn ? `/CN=${cn}` : "/O=flannel test client",
    "-CA",
    "ca.pem",
    "-CAkey",
    "ca-key.pem",
    "-keyout",
    `${name}-key.pem`,
    "-out",
    `${name}.pem`,
    ...extensions.flatMap((e) => ["-addext", e]),
  ], dir);
}

export async function makeTlsFiles(): Promise<TlsFiles> {
  const dir = await Deno.makeTempDir({ prefix: "flannel-tls-" });
  try {
    await openssl([
      "req",
      "-x509",
      "-newkey",
      "ec",
      "-pkeyopt",
      "ec_paramgen_curve:P-256",
      "-nodes",
      "-days",
      "2",
      "-subj",
      "/CN=flannel test CA",
      "-keyout",
      "ca-key.pem",
      "-out",
      "ca.pem",
      "-addext",
      "basicConstraints=critical,CA:TRUE",
      "-addext",
      "keyUsage=critical,keyCertSign,cRLSign",
    ], dir);
    const leaf = ["basicConstraints=critical,CA:FALSE", "keyUsage=critical,digitalSignature"];
    await issue(dir, "server", "etcd", [
      ...leaf,
      "subjectAltName=IP:127.0.0.1,DNS:localhost",
      "extendedKeyUsage=serverAuth,clientAuth",
    ]);
    // No CommonName: with auth enabled, etcd 3.4's gateway rejects client certificates that
    // have one ("CommonName of client sending a request against gateway will be ignored").
    await issue(dir, "client", "", [...leaf, "extendedKeyUsage=clientAuth"]);
  } catch (err) {
    await Deno.remove(dir, { recursive: true });
    throw err;
  }
  return {
    dir,
    caFile: `${dir}/ca.pem`,
    serverCertFile: `${dir}/server.pem`,
    serverKeyFile: `${dir}/server-key.pem`,
    clientCertFile: `${dir}/client.pem`,
    clientKeyFile: `${dir}/client-key.pem`,
    async [Symbol.asyncDispose]() {
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    },
  };
}
