import assert from "node:assert/strict";
import { deleteTablesScript, masqRuleLines, tableScript } from "./nftables_rules.ts";

Deno.test("tableScript() replaces the whole table in one script with flannel pkg/trafficmngr/nftables/nftables.go rules", () => {
  const script = tableScript(4, {
    masq: { network: "10.42.0.0/16", subnet: "10.42.1.0/24", fullyRandom: true },
    forward: "10.42.0.0/16",
  });
  assert.equal(
    script,
    `add table ip flannel-ipv4
delete table ip flannel-ipv4
add table ip flannel-ipv4 { comment "rules for flannel-ipv4" ; }
add chain ip flannel-ipv4 postrtg { comment "chain to manage traffic masquerading by flannel" ; type nat hook postrouting priority srcnat ; policy accept ; }
add rule ip flannel-ipv4 postrtg meta mark 0x4000 return
add rule ip flannel-ipv4 postrtg ip saddr 10.42.1.0/24 ip daddr 10.42.0.0/16 return
add rule ip flannel-ipv4 postrtg ip saddr 10.42.0.0/16 ip daddr 10.42.1.0/24 return
add rule ip flannel-ipv4 postrtg ip saddr != 10.42.1.0/24 ip daddr 10.42.0.0/16 return
add rule ip flannel-ipv4 postrtg ip saddr 10.42.0.0/16 ip daddr != 224.0.0.0/4 masquerade fully-random
add rule ip flannel-ipv4 postrtg ip saddr != 10.42.0.0/16 ip daddr 10.42.0.0/16 masquerade fully-random
add chain ip flannel-ipv4 forward { comment "chain to accept flannel traffic" ; type filter hook forward priority filter ; policy accept ; }
add rule ip flannel-ipv4 forward ip saddr 10.42.0.0/16 accept
add rule ip flannel-ipv4 forward ip daddr 10.42.0.0/16 accept
`,
  );
});

Deno.test("tableScript() for IPv6 forward only has no nat chain", () => {
  assert.equal(
    tableScript(6, { forward: "fd42::/56" }),
    `add table ip6 flannel-ipv6
delete table ip6 flannel-ipv6
add table ip6 flannel-ipv6 { comment "rules for flannel-ipv6" ; }
add chain ip6 flannel-ipv6 forward { comment "chain to accept flannel traffic" ; type filter hook forward priority filter ; policy accept ; }
add rule ip6 flannel-ipv6 forward ip6 saddr fd42::/56 accept
add rule ip6 flannel-ipv6 forward ip6 daddr fd42::/56 accept
`,
  );
});

Deno.test("masqRuleLines() uses ff00::/8 and plain masquerade when fully-random is off", () => {
  const lines = masqRuleLines(6, {
    network: "fd42::/56",
    subnet: "fd42:0:0:1::/64",
    fullyRandom: false,
  });
  assert.equal(lines[3], "ip6 saddr != fd42:0:0:1::/64 ip6 daddr fd42::/56 return");
  assert.equal(lines[4], "ip6 saddr fd42::/56 ip6 daddr != ff00::/8 masquerade");
});

Deno.test("deleteTablesScript() deletes only flannel's tables that exist", () => {
  assert.equal(
    deleteTablesScript(["ip nat", "ip6 flannel-ipv6", "inet filter"]),
    "delete table ip6 flannel-ipv6\n",
  );
  assert.equal(
    deleteTablesScript(["ip flannel-ipv4", "ip6 flannel-ipv6"]),
    "delete table ip flannel-ipv4\ndelete table ip6 flannel-ipv6\n",
  );
  assert.equal(deleteTablesScript(["ip filter"]), "");
});
