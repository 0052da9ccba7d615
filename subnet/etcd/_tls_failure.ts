/**
 * Turns a failed HTTPS request to etcd into one sentence, cause first and worded the same on
 * every retry. Deno reports TLS failures only as text ("invalid peer certificate: UnknownIssuer",
 * "received fatal alert: BadCertificate"), so this is the one place that reads error messages.
 * Under TLS 1.3 a refused client certificate is rejected after the client's handshake is done,
 * and the request then fails either with the server's alert or with a bare "connection closed";
 * in the second case one TLS connection of our own reads the alert.
 */
import type { TlsFlags, TlsMaterial } from "./_config.ts";

export interface TlsContext extends TlsFlags {
  /** What the HTTP client was built with (undefined: system roots, no client certificate). */
  material?: TlsMaterial;
}

export interface TlsProblem {
  /** The whole sentence for the operator. */
  message: string;
  /** The TLS library's own words, e.g. `received fatal alert: BadCertificate`. */
  detail: string;
}

function messages(err: unknown): string {
  const parts: string[] = [];
  for (let e = err, depth = 0; e !== undefined && depth < 8; depth++) {
    parts.push(e instanceof Error ? e.message : String(e));
    e = e instanceof Error ? e.cause : undefined;
  }
  return parts.join(": ");
}

/** Connects with the client's TLS settings and returns the server's TLS alert, if it sends one. */
async function readAlert(endpoint: URL, material: TlsMaterial | undefined): Promise<string> {
  let conn: Deno.TlsConn | undefined;
  const timer = setTimeout(() => conn?.close(), 2000);
  try {
    conn = await Deno.connectTls({
      hostname: endpoint.hostname.replace(/^\[|\]$/g, ""),
      port: Number(endpoint.port || 443),
      caCerts: material?.caCerts,
      ...(material?.cert && material.key && { cert: material.cert, key: material.key }),
    });
    await conn.handshake();
    const request = `GET /health HTTP/1.1\r\nHost: ${endpoint.host}\r\nConnection: close\r\n\r\n`;
    await conn.write(new TextEncoder().encode(request));
    await conn.read(new Uint8Array(64));
    return "";
  } catch (err) {
    return messages(err);
  } finally {
    clearTimeout(timer);
    try {
      conn?.close();
    } catch { /* closed by the timer */ }
  }
}

/** Explains `err` from a request to `endpoint` when it is a TLS failure; undefined otherwise. */
export async function explainTlsFailure(
  endpoint: string,
  err: unknown,
  tls: TlsContext,
): Promise<TlsProblem | undefined> {
  const url = new URL(endpoint);
  if (url.protocol !== "https:") return undefined;
  let text = messages(err);
  if (/connection closed|connection reset/i.test(text)) text = await readAlert(url, tls.material);

  const peer = /invalid peer certificate: (\w+)/.exec(text);
  if (peer) {
    const detail = peer[0];
    const fix = peer[1] === "NotValidForName"
      ? `it is not issued for "${url.hostname}": use a host name or IP its subjectAltName ` +
        "lists in --etcd-endpoints"
      : peer[1] === "Expired"
      ? "it has expired: renew etcd's server certificate"
      : tls.material?.caCerts
      ? `it is not signed by --etcd-cafile "${tls.caFile}": point --etcd-cafile at the CA ` +
        "that signed etcd's certificate"
      : "set --etcd-cafile to the CA that signed it";
    return {
      detail,
      message: `etcd's TLS certificate at ${endpoint} is not trusted (${detail}): ${fix}`,
    };
  }
  const alert = /received fatal alert: (\w+)/.exec(text);
  if (!alert) return undefined;
  const detail = alert[0];
  const clientCertAlerts = [
    "BadCertificate",
    "UnknownCA",
    "CertificateRequired",
    "CertificateUnknown",
    "UnsupportedCertificate",
    "CertificateExpired",
    "CertificateRevoked",
    "AccessDenied",
  ];
  if (!clientCertAlerts.includes(alert[1])) {
    return { detail, message: `TLS handshake with etcd at ${endpoint} failed (${detail})` };
  }
  if (!tls.material?.cert) {
    return {
      detail,
      message: `etcd at ${endpoint} requires a client certificate (${detail}): set ` +
        "--etcd-certfile and --etcd-keyfile",
    };
  }
  return {
    detail,
    message: `etcd at ${endpoint} refused the client certificate --etcd-certfile ` +
      `"${tls.certFile}" (${detail}): use a certificate signed by a CA in etcd's --trusted-ca-file`,
  };
}
