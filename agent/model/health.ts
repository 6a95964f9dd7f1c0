export type GateVerdict = { ok: true; durationMs: number } | { ok: false; reason: string; durationMs: number };

