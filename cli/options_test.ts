import assert from "node:assert/strict";
import { FlagError } from "./flags.ts";
import {
  envVarName,
  flagNames,
  type Options,
  parseOptions,
  redactedOptions,
  usage,
  validateOptions,
} from "./options.ts";

/** flannel main.go (flags), written out by hand. */
const DEFAULTS: Options = {
  etcdEndpoints: ["http://127.0.0.1:4001", "http://127.0.0.1:2379"],
  etcdPrefix: "/coreos.com/network",
  etcdKeyfile: "",
  etcdCertfile: "",
  etcdCafile: "",
  etcdUsername: "",
  etcdPassword: "",
  iface: [],
  ifaceRegex: [],
  ifaceCanReach: "",
  subnetFile: "/run/flannel/subnet.env",
  publicIP: "",
  publicIPv6: "",
  subnetLeaseRenewMargin: 60,
  ipMasq: false,
  ipMasqFullyRandomDisable: false,
  kubeSubnetMgr: false,
  kubeApiUrl: "",
  kubeAnnotationPrefix: "flannel.alpha.coreos.com",
  kubeconfigFile: "",
  version: false,
  healthzIP: "0.0.0.0",
  healthzPort: 0,
  iptablesResync: 5,
  iptablesForwardRules: true,
  ipBlackholeRoute: false,
  netConfigPath: "/etc/kube-flannel/net-conf.json",
  setNodeNetworkUnavailable: true,
  v: 0,
  vmodule: "",
  logBacktraceAt: "",
};

const FLAG_NAMES = [
  "etcd-endpoints",
  "etcd-prefix",
  "etcd-keyfile",
  "etcd-certfile",
  "etcd-cafile",
  "etcd-username",
  "etcd-password",
  "iface",
  "iface-regex",
  "iface-can-reach",
  "subnet-file",
  "public-ip",
  "public-ipv6",
  "subnet-lease-renew-margin",
  "ip-masq",
  "ip-masq-fully-random-disable",
  "kube-subnet-mgr",
  "kube-api-url",
  "kube-annotation-prefix",
  "kubeconfig-file",
  "version",
  "healthz-ip",
  "healthz-port",
  "iptables-resync",
  "iptables-forward-rules",
  "ip-blackhole-route",
  "net-config-path",
  "set-node-network-unavailable",
  "v",
  "vmodule",
  "log_backtrace_at",
];

function optionsOf(args: string[], env: Record<string, string> = {}): Options {
  const parsed = parseOptions(args, env);
  assert.deepEqual(parsed.envErrors, []);
  assert.equal(parsed.help, false);
  return parsed.options;
}

Deno.test("parseOptions() defaults match flannel main.go (flags)", () => {
  const parsed = parseOptions([], {});
  assert.deepEqual(parsed.options, DEFAULTS);
  assert.equal(parsed.help, false);
  assert.equal(parsed.explicit.size, 0);
  assert.deepEqual(parsed.envErrors, []);
});

Deno.test("flagNames() lists flannel's flags exactly", () => {
  assert.deepEqual(flagNames().sort(), [...FLAG_NAMES].sort());
});

Deno.test("parseOptions() parses the host-install invocation", () => {
  const parsed = parseOptions([
    "--etcd-endpoints=http://127.0.0.1:2379",
    "--iface=eth0",
    "-etcd-prefix=/docker-subnet/network",
  ], {});
  assert.deepEqual(parsed.options, {
    ...DEFAULTS,
    etcdEndpoints: ["http://127.0.0.1:2379"],
    iface: ["eth0"],
    etcdPrefix: "/docker-subnet/network",
  });
  assert.deepEqual([...parsed.explicit].sort(), ["etcd-endpoints", "etcd-prefix", "iface"]);
});

Deno.test("parseOptions() maps every flag to its option", async (t) => {
  const cases: [string[], Partial<Options>][] = [
    [["--etcd-endpoints= a,b ,,c"], { etcdEndpoints: [" a", "b ", "", "c"] }],
    [["--etcd-keyfile", "k", "--etcd-certfile", "c", "--etcd-cafile", "ca"], {
      etcdKeyfile: "k",
      etcdCertfile: "c",
      etcdCafile: "ca",
    }],
    [["--etcd-username=u", "--etcd-password=p"], { etcdUsername: "u", etcdPassword: "p" }],
    [["--iface=eth0", "--iface", "10.0.0.1", "--iface-regex=^en", "--iface-regex=^eth"], {
      iface: ["eth0", "10.0.0.1"],
      ifaceRegex: ["^en", "^eth"],
    }],
    [["--iface-can-reach=10.0.0.1"], { ifaceCanReach: "10.0.0.1" }],
    [["--subnet-file=/tmp/s.env"], { subnetFile: "/tmp/s.env" }],
    [["--public-ip=1.2.3.4", "--public-ipv6=fd00::1"], {
      publicIP: "1.2.3.4",
      publicIPv6: "fd00::1",
    }],
    [["--subnet-lease-renew-margin=0x10"], { subnetLeaseRenewMargin: 16 }],
    [["--ip-masq", "--ip-masq-fully-random-disable"], {
      ipMasq: true,
      ipMasqFullyRandomDisable: true,
    }],
    [["--kube-subnet-mgr", "--kube-api-url=https://k:6443", "--kubeconfig-file=/k"], {
      kubeSubnetMgr: true,
      kubeApiUrl: "https://k:6443",
      kubeconfigFile: "/k",
    }],
    [["--kube-annotation-prefix=example.com/x"], { kubeAnnotationPrefix: "example.com/x" }],
    [["--version"], { version: true }],
    [["--healthz-ip=127.0.0.1", "--healthz-port", "8081"], {
      healthzIP: "127.0.0.1",
      healthzPort: 8081,
    }],
    [["--iptables-resync=10", "--iptables-forward-rules=false", "--ip-blackhole-route"], {
      iptablesResync: 10,
      iptablesForwardRules: false,
      ipBlackholeRoute: true,
    }],
    [["--net-config-path=/n.json", "--set-node-network-unavailable=0"], {
      netConfigPath: "/n.json",
      setNodeNetworkUnavailable: false,
    }],
    [["-v=10"], { v: 10 }],
    [["-v", "3"], { v: 3 }],
    [["--v=2", "--vmodule=main=3", "--log_backtrace_at=main.go:10"], {
      v: 2,
      vmodule: "main=3",
      logBacktraceAt: "main.go:10",
    }],
  ];
  for (const [args, want] of cases) {
    await t.step(args.join(" "), () => assert.deepEqual(optionsOf(args), { ...DEFAULTS, ...want }));
  }
});

Deno.test("parseOptions() throws FlagError for command-line mistakes", async (t) => {
  const cases: [string[], string][] = [
    [["--foo"], "flag provided but not defined: -foo"],
    [["--healthz-port=x"], 'invalid value "x" for flag -healthz-port: parse error'],
    [["--iface"], "flag needs an argument: -iface"],
    [["-v"], "flag needs an argument: -v"],
    [["--ip-masq=yes"], 'invalid boolean value "yes" for -ip-masq: parse error'],
    [
      ["--ip-masq", "false"],
      'unexpected argument "false": a boolean flag takes its value ' +
      'after "=", as in --ip-masq=false',
    ],
    [["--log-backtrace-at=x:1"], "flag provided but not defined: -log-backtrace-at"],
  ];
  for (const [args, message] of cases) {
    await t.step(args.join(" "), () => {
      assert.throws(() => parseOptions(args, {}), (err) => {
        assert.ok(err instanceof FlagError);
        assert.equal(err.message, message);
        return true;
      });
    });
  }
});

Deno.test("parseOptions() reports help and skips the environment", () => {
  const parsed = parseOptions(["--iface=a", "--help", "--bogus"], { FLANNELD_IP_MASQ: "x" });
  assert.equal(parsed.help, true);
  assert.deepEqual(parsed.envErrors, []);
  assert.deepEqual(parsed.options.iface, ["a"]);
});

Deno.test("envVarName() follows flagutil.SetFlagsFromEnv", async (t) => {
  const cases: [string, string][] = [
    ["etcd-endpoints", "FLANNELD_ETCD_ENDPOINTS"],
    ["iface-can-reach", "FLANNELD_IFACE_CAN_REACH"],
    ["v", "FLANNELD_V"],
    ["log_backtrace_at", "FLANNELD_LOG_BACKTRACE_AT"],
    ["kubeconfig-file", "FLANNELD_KUBECONFIG_FILE"],
    ["public-ipv6", "FLANNELD_PUBLIC_IPV6"],
    ["a.b-c", "FLANNELD_A_B_C"],
  ];
  for (const [name, want] of cases) await t.step(name, () => assert.equal(envVarName(name), want));
});

Deno.test("parseOptions() falls back to FLANNELD_* variables", async (t) => {
  await t.step("env applies to flags not on the command line", () => {
    const parsed = parseOptions(["--etcd-prefix=/cli"], {
      FLANNELD_ETCD_PREFIX: "/env",
      FLANNELD_ETCD_ENDPOINTS: "http://a:2379,http://b:2379",
      FLANNELD_IFACE: "eth0,eth1",
      FLANNELD_IFACE_REGEX: "^en",
      FLANNELD_IP_MASQ: "true",
      FLANNELD_IPTABLES_FORWARD_RULES: "F",
      FLANNELD_HEALTHZ_PORT: "0x1f90",
      FLANNELD_V: "4",
      FLANNELD_LOG_BACKTRACE_AT: "x.go:1",
      FLANNELD_PUBLIC_IPV6: "fd00::1",
    });
    assert.deepEqual(parsed.envErrors, []);
    assert.deepEqual(parsed.options, {
      ...DEFAULTS,
      etcdPrefix: "/cli",
      etcdEndpoints: ["http://a:2379", "http://b:2379"],
      iface: ["eth0,eth1"], // exactly one element, no comma splitting
      ifaceRegex: ["^en"],
      ipMasq: true,
      iptablesForwardRules: false,
      healthzPort: 8080,
      v: 4,
      logBacktraceAt: "x.go:1",
      publicIPv6: "fd00::1",
    });
    assert.ok(parsed.explicit.has("ip-masq"), "env-set flags count as explicit");
    assert.ok(parsed.explicit.has("etcd-prefix"));
    assert.ok(!parsed.explicit.has("subnet-file"));
  });
  await t.step("the command line wins, even for list flags", () => {
    const o = optionsOf(["--iface=cli", "--ip-masq=false"], {
      FLANNELD_IFACE: "env",
      FLANNELD_IP_MASQ: "true",
    });
    assert.deepEqual(o.iface, ["cli"]);
    assert.equal(o.ipMasq, false);
  });
  await t.step("empty values are ignored", () => {
    const parsed = parseOptions([], {
      FLANNELD_SUBNET_FILE: "",
      FLANNELD_IFACE: "",
      FLANNELD_HEALTHZ_PORT: "",
    });
    assert.deepEqual(parsed.options, DEFAULTS);
    assert.equal(parsed.explicit.size, 0);
    assert.deepEqual(parsed.envErrors, []);
  });
  await t.step("unrelated and lower-case variables are ignored", () => {
    assert.deepEqual(
      optionsOf([], { flanneld_ip_masq: "true", FLANNEL_IP_MASQ: "true", IP_MASQ: "1" }),
      DEFAULTS,
    );
  });
  await t.step("FLANNELD_VERSION applies like any other flag", () => {
    assert.equal(optionsOf([], { FLANNELD_VERSION: "1" }).version, true);
  });
});

Deno.test("parseOptions() collects bad FLANNELD_* values and applies the rest", () => {
  const parsed = parseOptions([], {
    FLANNELD_HEALTHZ_PORT: "eighty",
    FLANNELD_IP_MASQ: "yes",
    FLANNELD_SUBNET_LEASE_RENEW_MARGIN: "99999999999999999999",
    FLANNELD_SUBNET_FILE: "/tmp/x.env",
  });
  assert.deepEqual(parsed.options, { ...DEFAULTS, subnetFile: "/tmp/x.env" });
  assert.deepEqual([...parsed.explicit], ["subnet-file"]);
  assert.deepEqual(parsed.envErrors, [
    'invalid value "99999999999999999999" for FLANNELD_SUBNET_LEASE_RENEW_MARGIN ' +
    "(flag --subnet-lease-renew-margin): expected an integer (decimal, or 0x hex, 0o octal, " +
    "0b binary): value out of range",
    'invalid value "yes" for FLANNELD_IP_MASQ (flag --ip-masq): expected a boolean ' +
    "(true, false, 1, 0, t, f): parse error",
    'invalid value "eighty" for FLANNELD_HEALTHZ_PORT (flag --healthz-port): expected an ' +
    "integer (decimal, or 0x hex, 0o octal, 0b binary): parse error",
  ]);
});

Deno.test("usage() prints the header and every flag in Go layout", () => {
  const text = usage("/usr/bin/flanneld");
  assert.ok(text.startsWith("Usage: /usr/bin/flanneld [OPTION]...\n  -etcd-cafile string\n"));
  assert.ok(!text.endsWith("\n"));
  for (const name of FLAG_NAMES) {
    assert.match(text, new RegExp(`^  -${name}( (string|int|value))?\\n    \\t\\S`, "m"), name);
  }
  const entries = text.split("\n").filter((l) => l.startsWith("  -")).map((l) => l.slice(3));
  assert.deepEqual(entries.map((e) => e.split(" ")[0]), [...FLAG_NAMES].sort());
  for (
    const fragment of [
      '(default "http://127.0.0.1:4001,http://127.0.0.1:2379")',
      '(default "/coreos.com/network")',
      '(default "/run/flannel/subnet.env")',
      '(default "flannel.alpha.coreos.com")',
      '(default "0.0.0.0")',
      '(default "/etc/kube-flannel/net-conf.json")',
      "ranging from 1 to 1439 (default 60)",
      "in seconds (default 5)",
      "FORWARD chain in iptables (default true)",
      "set NodeNetworkUnavailable after ready (default true)",
      "  -v value\n    \tnumber for the log level verbosity\n",
      "  -ip-masq\n    \tsetup IP masquerade",
      "  -healthz-port int\n    \tthe port for healthz server to listen(0 to disable)\n",
    ]
  ) {
    assert.ok(text.includes(fragment), `usage lacks ${JSON.stringify(fragment)}`);
  }
});

Deno.test("validateOptions() enforces value ranges", async (t) => {
  const ok: Partial<Options>[] = [
    {},
    { subnetLeaseRenewMargin: 1 },
    { subnetLeaseRenewMargin: 1439 },
    { healthzPort: 65535 },
    { iptablesResync: 1 },
    { iptablesResync: 2147483 },
  ];
  for (const o of ok) {
    await t.step(`accepts ${JSON.stringify(o)}`, () => validateOptions({ ...DEFAULTS, ...o }));
  }
  const bad: [Partial<Options>, RegExp][] = [
    [{ subnetLeaseRenewMargin: 0 }, /subnet-lease-renew-margin option 0, out of acceptable range/],
    [{ subnetLeaseRenewMargin: 1440 }, /option 1440.*--subnet-lease-renew-margin .* 1 to 1439/],
    [{ subnetLeaseRenewMargin: -5 }, /option -5/],
    [{ healthzPort: -1 }, /healthz-port option -1.*--healthz-port .* 1 to 65535, or 0 to disable/],
    [{ healthzPort: 65536 }, /healthz-port option 65536/],
    [{ iptablesResync: 0 }, /iptables-resync option 0.*--iptables-resync .* from 1 to 2147483/],
    [{ iptablesResync: 2147484 }, /iptables-resync option 2147484/],
  ];
  for (const [o, message] of bad) {
    await t.step(`rejects ${JSON.stringify(o)}`, () => {
      assert.throws(() => validateOptions({ ...DEFAULTS, ...o }), (err) => {
        assert.ok(err instanceof RangeError);
        assert.match(err.message, message);
        return true;
      });
    });
  }
});

Deno.test("redactedOptions() hides secrets and keeps everything else", async (t) => {
  await t.step("password replaced when set", () => {
    const o = { ...DEFAULTS, etcdUsername: "root", etcdPassword: "s3cret" };
    const r = redactedOptions(o);
    assert.deepEqual(r, { ...o, etcdPassword: "<redacted>" });
    assert.ok(!JSON.stringify(r).includes("s3cret"));
    assert.equal(o.etcdPassword, "s3cret", "the input is not modified");
  });
  await t.step("empty password stays empty", () => {
    assert.deepEqual(redactedOptions(DEFAULTS), { ...DEFAULTS });
  });
  await t.step("passwords inside endpoint URLs are replaced", () => {
    const o = {
      ...DEFAULTS,
      etcdEndpoints: ["https://u:pw@a:2379", "http://b:2379", "https://u@c:2379", "d:2379"],
    };
    assert.deepEqual(redactedOptions(o).etcdEndpoints, [
      "https://u:<redacted>@a:2379",
      "http://b:2379",
      "https://u@c:2379",
      "d:2379",
    ]);
  });
});
