import assert from "node:assert/strict";
import ipaddr from "ipaddr.js";
import { ipText } from "./_text.ts";

Deno.test("ipText() prints IPv4 as ipaddr.js does and IPv6 through it", () => {
  for (const text of ["0.0.0.0", "255.255.255.255", "10.5.0.1", "192.168.100.7", "1.2.3.4"]) {
    const bytes = new Uint8Array(ipaddr.parse(text).toByteArray());
    assert.equal(ipText(bytes), ipaddr.fromByteArray(Array.from(bytes)).toString());
    assert.equal(ipText(bytes), text);
  }
  assert.equal(ipText(new Uint8Array(ipaddr.parse("fd00::1").toByteArray())), "fd00::1");
  assert.throws(() => ipText(new Uint8Array(5)), /Cannot format IP address of 5 bytes/);
});
