import type { Queryable } from '../storage/db.ts';

/**
 * The audit log's hash chains, as the database keeps them: one per merchant,
 * and `operator` for entries without a merchant. Each entry stores its place
 * in its chain, the previous entry's hash and its own, computed by the
 * database on insert (server/storage/functions/audit_chain_*.sql).
 */

export type ChainProblemKind = 'edited' | 'removed' | 'out_of_order';

export interface ChainProblem {
  kind: ChainProblemKind;
  chain: string;
  /** The entry's place in its chain, or the first of a run of missing places. */
  seq: number | null;
  /** The last missing place of a run. */
  to_seq: number | null;
  /** The entry's id, when the entry is there. */
  entry: string | null;
  message: string;
}

/** A chain's head as someone wrote it down earlier: the log must still hold that entry, unchanged. */
export interface ChainWitness {
  chain: string;
  seq: number;
  /** Lower-case hex SHA-256. */
  hash: string;
}

export interface ChainHead {
  chain: string;
  seq: number;
  hash: string;
}

export interface AuditVerification {
  ok: boolean;
  /** Entries checked, over every chain. */
  entries: number;
  chains: { chain: string; entries: number; head: { seq: number; hash: string } | null }[];
  /** Witnesses checked. */
  witnesses: number;
  problems: ChainProblem[];
}

/** A chain head as `audit verify --expect` takes it. */
export const formatWitness = (head: ChainHead) => `${head.chain}:${head.seq}:${head.hash}`;

export const WITNESS_PATTERN = /^(operator|mer_[0-9A-Za-z]{1,64}):([1-9][0-9]{0,17}):([0-9a-f]{64})$/;

export function parseWitness(text: string): ChainWitness | undefined {
  const match = WITNESS_PATTERN.exec(text);
  return match === null ? undefined : { chain: match[1]!, seq: Number(match[2]), hash: match[3]! };
}

const MESSAGES: Record<string, { kind: ChainProblemKind; message: string }> = {
  entry: { kind: 'edited', message: 'The entry does not match its hash: it was changed after it was written.' },
  gap: { kind: 'removed', message: 'Entries are missing from the middle of the chain.' },
  link: { kind: 'out_of_order', message: 'The entry does not link to the entry before it: entries were reordered or renumbered, or the one before it was rewritten.' },
  tail: { kind: 'removed', message: "The chain's last entries are missing: its head counts more entries than the chain holds." },
  beyond_head: { kind: 'out_of_order', message: "Entries follow the chain's head: they were added without being chained." },
  head_hash: { kind: 'edited', message: "The chain's last entry was rewritten: its hash differs from the one the chain's head holds." },
  head_missing: { kind: 'removed', message: "The chain's head is missing." },
  witness_missing: { kind: 'removed', message: 'The entry a witness wrote down is missing.' },
  witness_hash: { kind: 'edited', message: 'The entry differs from the hash a witness wrote down: the chain was rewritten up to it.' },
};

/**
 * Recomputes every chain in one statement (one snapshot): each entry's hash
 * from its fields, each link to the entry before it, the numbering, and each
 * chain's end against its head; then checks each witness. Reports every
 * problem, in chain order.
 */
export async function verifyAuditChains(db: Queryable, witnesses: readonly ChainWitness[]): Promise<AuditVerification> {
  const { rows } = await db.query<{ report: string }>(
    `with entries as (
       select coalesce(e.chain, coalesce(e.merchant_id, 'operator')) as chain, e.chain_seq, e.id, e.hash, e.prev_hash,
              e.hash is not null and e.hash = tessera_audit_entry_hash(e) as intact,
              lag(e.chain_seq) over w as before_seq,
              lag(e.hash) over w as before_hash
         from audit_events e
       window w as (partition by coalesce(e.chain, coalesce(e.merchant_id, 'operator')) order by e.chain_seq)
     ),
     tails as (
       select chain, count(*) as entries, max(chain_seq) as last_seq,
              (array_agg(hash order by chain_seq desc nulls last))[1] as last_hash
         from entries group by chain
     ),
     chains as (
       select coalesce(t.chain, h.chain) as chain, coalesce(t.entries, 0) as entries, t.last_seq, t.last_hash,
              h.seq as head_seq, h.hash as head_hash
         from tails t full join audit_chain_heads h on h.chain = t.chain
     ),
     witnesses as (
       select w.chain, w.seq, w.hash, encode(e.hash, 'hex') as found, e.id
         from unnest($1::text[], $2::bigint[], $3::text[]) as w(chain, seq, hash)
         left join audit_events e on e.chain = w.chain and e.chain_seq = w.seq
     ),
     problems as (
       select 'entry' as detail, chain, chain_seq as seq, null::bigint as to_seq, id from entries where not intact
       union all
       select 'gap', chain, coalesce(before_seq, 0) + 1, chain_seq - 1, null from entries
        where chain_seq > coalesce(before_seq, 0) + 1
       union all
       select 'link', chain, chain_seq, null, id from entries
        where chain_seq = coalesce(before_seq, 0) + 1
          and prev_hash is distinct from coalesce(before_hash, decode(repeat('00', 32), 'hex'))
       union all
       select 'tail', chain, coalesce(last_seq, 0) + 1, head_seq, null from chains where head_seq > coalesce(last_seq, 0)
       union all
       select 'beyond_head', chain, head_seq + 1, last_seq, null from chains where last_seq > head_seq
       union all
       select 'head_hash', chain, last_seq, null, null from chains where head_seq = last_seq and head_hash is distinct from last_hash
       union all
       select 'head_missing', chain, null, null, null from chains where head_seq is null
       union all
       select case when found is null then 'witness_missing' else 'witness_hash' end, chain, seq, null, id from witnesses
        where found is distinct from hash
     )
     select json_build_object(
       'entries', (select count(*) from audit_events),
       'chains', coalesce((select json_agg(json_build_object(
           'chain', chain, 'entries', entries, 'seq', head_seq, 'hash', encode(head_hash, 'hex')) order by chain) from chains), '[]'),
       'problems', coalesce((select json_agg(json_build_object(
           'detail', detail, 'chain', chain, 'seq', seq, 'to_seq', to_seq, 'entry', id) order by chain, seq nulls first, detail) from problems), '[]')
     )::text as report`,
    [witnesses.map((w) => w.chain), witnesses.map((w) => String(w.seq)), witnesses.map((w) => w.hash)],
  );
  const report = JSON.parse(rows[0]!.report) as {
    entries: number | string;
    chains: { chain: string; entries: number | string; seq: number | string | null; hash: string | null }[];
    problems: { detail: string; chain: string; seq: number | string | null; to_seq: number | string | null; entry: string | null }[];
  };
  const number = (value: number | string | null) => (value === null ? null : Number(value));
  const problems = report.problems.map((p): ChainProblem => {
    const { kind, message } = MESSAGES[p.detail]!;
    return { kind, chain: p.chain, seq: number(p.seq), to_seq: number(p.to_seq), entry: p.entry, message };
  });
  return {
    ok: problems.length === 0,
    entries: Number(report.entries),
    chains: report.chains.map((c) => ({
      chain: c.chain,
      entries: Number(c.entries),
      head: c.seq === null || c.hash === null ? null : { seq: Number(c.seq), hash: c.hash },
    })),
    witnesses: witnesses.length,
    problems,
  };
}

/** Every chain's head, for the maintenance log's external witness. */
export async function auditChainHeads(db: Queryable): Promise<ChainHead[]> {
  const { rows } = await db.query<{ chain: string; seq: string | number; hash: string }>(
    `select chain, seq::text as seq, encode(hash, 'hex') as hash from audit_chain_heads where seq > 0 order by chain`,
  );
  return rows.map((row) => ({ chain: row.chain, seq: Number(row.seq), hash: row.hash }));
}
