/**
 * A test double of iptables/ip6tables that keeps rule lines per family, table and chain and
 * understands the commands this folder issues (`--version`, `-w -t T -S C`, `*-restore
 * --noflush` with `:C`, `-A`, `-D`, `-F`, `-X` lines). Enough to test resync without root.
 */
import type { CommandResult } from "../../kernel/firewall/command.ts";
import { fail, ok } from "./scripted_runner.ts";

const BUILTIN: Record<string, string[]> = {
  nat: ["PREROUTING", "INPUT", "OUTPUT", "POSTROUTING"],
  filter: ["INPUT", "FORWARD", "OUTPUT"],
};

export class FakeXtables {
  version = "iptables v1.8.9 (nf_tables)";
  /** `family/table/chain` → rule lines (`-A ...`). */
  readonly chains = new Map<string, string[]>();
  /** Make the next restore fail with this message. */
  failRestore?: string;

  constructor() {
    for (const family of ["4", "6"]) {
      for (const [table, names] of Object.entries(BUILTIN)) {
        for (const name of names) this.chains.set(`${family}/${table}/${name}`, []);
      }
    }
  }

  rules(family: 4 | 6, table: string, chain: string): string[] | undefined {
    return this.chains.get(`${family}/${table}/${chain}`);
  }

  handle(argv: readonly string[], stdin?: string): CommandResult | undefined {
    const m = /^(ip6?)tables(-restore)?$/.exec(argv[0]);
    if (!m) return undefined;
    const family = m[1] === "ip6" ? "6" : "4";
    if (m[2]) return this.#restore(family, stdin ?? "");
    if (argv[1] === "--version") return ok(this.version + "\n");
    const [, w, t, table, s, chain] = argv;
    if (w !== "-w" || t !== "-t" || s !== "-S") return fail(`unexpected ${argv.join(" ")}`);
    const rules = this.chains.get(`${family}/${table}/${chain}`);
    if (!rules) return fail(`iptables: chain \`${chain}' in table \`${table}' is incompatible`);
    const head = BUILTIN[table]?.includes(chain) ? `-P ${chain} ACCEPT` : `-N ${chain}`;
    return ok([head, ...rules].join("\n") + "\n");
  }

  #restore(family: string, payload: string): CommandResult {
    if (this.failRestore !== undefined) {
      const message = this.failRestore;
      this.failRestore = undefined;
      return fail(message);
    }
    const next = new Map([...this.chains].map(([k, v]) => [k, [...v]]));
    let table = "";
    for (const [i, line] of payload.split("\n").entries()) {
      if (line === "" || line === "COMMIT") continue;
      const bad = () => fail(`iptables-restore: line ${i + 1} failed`);
      if (line.startsWith("*")) {
        table = line.slice(1);
        continue;
      }
      if (line.startsWith(":")) {
        next.set(`${family}/${table}/${line.slice(1).split(" ")[0]}`, []);
        continue;
      }
      const [op, chain] = line.split(" ");
      const key = `${family}/${table}/${chain}`;
      const rules = next.get(key);
      if (!rules) return bad();
      const rule = "-A" + line.slice(2);
      if (op === "-A") {
        const target = / -j ([\w-]+)/.exec(line)?.[1];
        if (target?.startsWith("FLANNEL") && !next.has(`${family}/${table}/${target}`)) {
          return bad();
        }
        rules.push(rule);
      } else if (op === "-D") {
        const at = rules.indexOf(rule);
        if (at < 0) return bad();
        rules.splice(at, 1);
      } else if (op === "-F") rules.length = 0;
      else if (op === "-X") next.delete(key);
      else return bad();
    }
    this.chains.clear();
    for (const [k, v] of next) this.chains.set(k, v);
    return ok();
  }
}
