/** The version printed by `--version` (flannel prints its release; ours tracks flannel's). */
export const VERSION = "v0.28.9-deno.0";
