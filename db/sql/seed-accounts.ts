// Synthetic prepaid accounts generated inside PostgreSQL (generate_series + one INSERT ... SELECT):
// no row crosses the network, which is what makes 850,000 accounts take seconds.
//
// Every value is a function of (seed, id) through hashint8extended, PostgreSQL's stable seeded
// 64-bit hash (the one hash partitioning relies on), so a seed always gives the same accounts.
// Shares (per 10,000 draws, documented in accounts/seed.ts):
//   phone  mobile 8500 | landline 400 | voip 200 | valid, type unknown 400 | missing 300 | invalid text 200
//   email  valid 8400 (of which ~5% plus-tagged, ~9% IDN domains) | missing 1500 | invalid 100
//   sms_opt_out 200, email_opt_out 50; status closed 200, suspended 100, else active;
//   shared contact 100: phone, phone type and email copied from one of the 20 previous accounts.
// Phones are NANP numbers in the 555 exchange (+1 NPA 555 XXXX): real in form, not in use; an
// injective map from the contact id makes them unique except where shared on purpose.
// Emails use example.com/.net/.org and reserved IDN test domains.
// PIN verifiers are random-looking bytes with pin_algo 'synthetic': real scrypt at ~0.5 s per PIN
// would take days for 850,000 accounts, and every PIN is reset anyway; no PIN matches them.
import type { Sql } from '../pool';

const FIRST = [
  ['James', 'james'],
  ['Mary', 'mary'],
  ['José', 'jose'],
  ['Zoë', 'zoe'],
  ['François', 'francois'],
  ['Björn', 'bjorn'],
  ['Søren', 'soren'],
  ['Łukasz', 'lukasz'],
  ['Ana María', 'anamaria'],
  ['Chloé', 'chloe'],
  ['Mohammed', 'mohammed'],
  ['Aaliyah', 'aaliyah'],
  ['Siobhán', 'siobhan'],
  ['Renée', 'renee'],
  ['Jürgen', 'jurgen'],
  ['Priya', 'priya'],
  ['Olamide', 'olamide'],
  ['Dmitri', 'dmitri'],
  ['Żaneta', 'zaneta'],
  ['Şebnem', 'sebnem'],
  ['Emily', 'emily'],
  ['Michael', 'michael'],
  ['Sarah', 'sarah'],
  ['David', 'david'],
  ['Jennifer', 'jennifer'],
  ['Robert', 'robert'],
  ['Linda', 'linda'],
  ['Carlos', 'carlos'],
  ['Fatima', 'fatima'],
  ['Amélie', 'amelie'],
  ['Hannah', 'hannah'],
  ['Ethan', 'ethan'],
  ['Olivia', 'olivia'],
  ['Noah', 'noah'],
  ['Sofía', 'sofia'],
  ['Mateo', 'mateo'],
  ['Giulia', 'giulia'],
  ['Kwame', 'kwame'],
  ['Aroha', 'aroha'],
  ['Thảo', 'thao'],
];
const LAST = [
  ['Smith', 'smith'],
  ['Johnson', 'johnson'],
  ['García', 'garcia'],
  ['Müller', 'muller'],
  ["O'Brien", 'obrien'],
  ["D'Angelo", 'dangelo'],
  ['Nguyễn', 'nguyen'],
  ['Kowalski', 'kowalski'],
  ['Søndergaard', 'sondergaard'],
  ['Lefèvre', 'lefevre'],
  ['Ødegård', 'odegard'],
  ['MacDonald', 'macdonald'],
  ['van der Berg', 'vanderberg'],
  ['Al-Sayed', 'alsayed'],
  ['Núñez', 'nunez'],
  ['Brown', 'brown'],
  ['Williams', 'williams'],
  ['Jones', 'jones'],
  ['Miller', 'miller'],
  ['Davis', 'davis'],
  ['Martinez', 'martinez'],
  ['Hernández', 'hernandez'],
  ['Lopez', 'lopez'],
  ['Wilson', 'wilson'],
  ['Anderson', 'anderson'],
  ['Taylor', 'taylor'],
  ['Thomas', 'thomas'],
  ['Moore', 'moore'],
  ['Jackson', 'jackson'],
  ['Martin', 'martin'],
  ['Lee', 'lee'],
  ['Patel', 'patel'],
  ['Okafor', 'okafor'],
  ['Ivanov', 'ivanov'],
  ['Schröder', 'schroder'],
  ['Çelik', 'celik'],
  ['Dubois', 'dubois'],
  ['Rossi', 'rossi'],
  ['Da Silva', 'dasilva'],
  ['Yılmaz', 'yilmaz'],
];
/** CJK names are written family name first, without a space. */
const CJK = [
  ['王芳', 'wang', 'fang'],
  ['李伟', 'li', 'wei'],
  ['张秀英', 'zhang', 'xiuying'],
  ['刘洋', 'liu', 'yang'],
  ['陈静', 'chen', 'jing'],
  ['佐藤花子', 'sato', 'hanako'],
  ['鈴木太郎', 'suzuki', 'taro'],
  ['高橋健', 'takahashi', 'ken'],
  ['김민준', 'kim', 'minjun'],
  ['이서연', 'lee', 'seoyeon'],
  ['박지훈', 'park', 'jihoon'],
  ['黄磊', 'huang', 'lei'],
  ['周杰', 'zhou', 'jie'],
  ['吴敏', 'wu', 'min'],
  ['田中愛', 'tanaka', 'ai'],
  ['渡辺翔', 'watanabe', 'sho'],
];
const DOMAINS = [
  // [domain, share per 10,000 valid emails]
  ['example.com', 4000],
  ['example.net', 2000],
  ['example.org', 1500],
  ['mail.example.com', 1000],
  ['post.example.net', 600],
  ['bücher.example', 300],
  ['münchen.example', 200],
  ['例え.テスト', 200],
  ['пример.испытание', 200],
] as const;
const PLANS = [
  ['prepaid-basic', 4000],
  ['prepaid-plus', 3000],
  ['prepaid-unlimited', 2000],
  ['payg-daily', 1000],
] as const;

/** Distinct NANP area codes used (201..999): phones are injective in the contact id below 7,990,000. */
const NPA_COUNT = 799;
const PHONE_SPACE = NPA_COUNT * 10_000;
/** Prime, coprime with PHONE_SPACE: multiplying by it permutes the phone space. */
const PHONE_STRIDE = 1_000_003;

const lit = (s: string) => `'${s.replace(/'/g, "''")}'`;
const arr = (xs: readonly string[]) => `ARRAY[${xs.map(lit).join(',')}]::text[]`;

/** CASE choosing from weighted [value, share] pairs by a draw u in [0, 10000). */
function weighted(u: string, pairs: readonly (readonly [string, number])[]): string {
  let acc = 0;
  const whens = pairs.slice(0, -1).map(([v, w]) => `WHEN ${u} < ${(acc += w)} THEN ${lit(v)}`);
  return `CASE ${whens.join(' ')} ELSE ${lit(pairs[pairs.length - 1][0])} END`;
}

/** Draw k for key x: uniform in [0, 2^63), a different stream per k and seed ($1). */
const h = (x: string, k: number) => `abs(hashint8extended(${x}, $1::bigint * 32 + ${k}))`;
const u = (x: string, k: number) => `(${h(x, k)} % 10000)`;

/**
 * The generator: one row per id in [$2, $2 + $3) for seed $1, with the account columns and the
 * category columns (phone_cat, email_cat, shared) used for the counts.
 */
export const SEED_GENERATOR_SQL = `
WITH ids AS (
  SELECT id, ${u('id', 1)} AS u_share, ${h('id', 2)} AS h_share
  FROM generate_series($2::bigint, $2::bigint + $3::bigint - 1) AS id
), src AS (
  SELECT id,
         -- contact id: the account whose phone and email this one carries (itself, or for ~1% a
         -- neighbour among the previous 20 seeded in this batch: a family sharing a phone)
         CASE WHEN u_share < 100 AND id - 1 - h_share % 20 >= $2::bigint THEN id - 1 - h_share % 20 ELSE id END AS cid
  FROM ids
), draws AS (
  SELECT id, cid, cid <> id AS shared,
         ${u('cid', 3)} AS u_phone, ${h('cid', 4)} AS h_phone,
         ${u('cid', 5)} AS u_email, ${h('cid', 6)} AS h_email,
         ${h('cid', 7)} AS h_person_c, ${h('id', 7)} AS h_person,
         ${u('id', 8)} AS u_status, ${u('id', 9)} AS u_sms, ${u('id', 10)} AS u_mail_out, ${u('id', 11)} AS u_plan,
         (cid * ${PHONE_STRIDE} + ${h('0::bigint', 12)}) % ${PHONE_SPACE} AS phone_idx
  FROM src
), mix1 AS (
  -- Three Feistel rounds over (area code, line): a bijection, so phones stay unique, but one that
  -- hides the linear stride (consecutive accounts do not get neighbouring numbers).
  SELECT d.*, (phone_idx % 10000 + ${h('phone_idx / 10000', 13)}) % 10000 AS l1 FROM draws d
), mix2 AS (
  SELECT m.*, (phone_idx / 10000 + ${h('l1', 14)}) % ${NPA_COUNT} AS npa_i FROM mix1 m
), phones AS (
  SELECT m.*, (l1 + ${h('npa_i', 15)}) % 10000 AS line_i FROM mix2 m
), people AS (
  SELECT d.*,
         -- person names: own id for the name, contact id for the email's local part
         h_person % 100 < 8 AS cjk, h_person_c % 100 < 8 AS cjk_c,
         (h_person / 100) % ${FIRST.length} + 1 AS fi, (h_person / 10000) % ${LAST.length} + 1 AS li,
         (h_person / 1000000) % ${LAST.length} + 1 AS li2, (h_person / 100) % ${CJK.length} + 1 AS ci,
         (h_person_c / 100) % ${FIRST.length} + 1 AS fi_c, (h_person_c / 10000) % ${LAST.length} + 1 AS li_c,
         (h_person_c / 100) % ${CJK.length} + 1 AS ci_c,
         (h_person / 100000000) % 100 AS name_style,
         201 + npa_i AS npa, lpad(line_i::text, 4, '0') AS line,
         CASE WHEN u_phone < 8500 THEN 'mobile' WHEN u_phone < 8900 THEN 'landline' WHEN u_phone < 9100 THEN 'voip'
              WHEN u_phone < 9500 THEN 'unknown' WHEN u_phone < 9800 THEN 'missing' ELSE 'invalid' END AS phone_cat,
         CASE WHEN u_email < 1500 THEN 'missing' WHEN u_email < 1600 THEN 'invalid' ELSE 'valid' END AS email_cat
  FROM phones d
), named AS (
  SELECT p.*,
         CASE WHEN cjk THEN (${arr(CJK.map((c) => c[0]))})[ci]
              WHEN name_style < 4 THEN (${arr(FIRST.map((c) => c[0]))})[fi] || ' ' || chr(65 + (h_person % 26)::int) || '. ' || (${arr(LAST.map((c) => c[0]))})[li]
              WHEN name_style < 6 THEN (${arr(FIRST.map((c) => c[0]))})[fi] || ' ' || (${arr(LAST.map((c) => c[0]))})[li] || '-' || (${arr(LAST.map((c) => c[0]))})[li2]
              ELSE (${arr(FIRST.map((c) => c[0]))})[fi] || ' ' || (${arr(LAST.map((c) => c[0]))})[li] END AS full_name,
         CASE WHEN cjk_c THEN (${arr(CJK.map((c) => c[2]))})[ci_c] || '.' || (${arr(CJK.map((c) => c[1]))})[ci_c]
              ELSE (${arr(FIRST.map((c) => c[1]))})[fi_c] || CASE h_email % 3 WHEN 0 THEN '.' WHEN 1 THEN '_' ELSE '' END
                   || (${arr(LAST.map((c) => c[1]))})[li_c] END || cid AS mail_local,
         ${weighted(
           `((h_email / 10000) % 10000)`,
           DOMAINS.map(([d, w]) => [d, w] as const),
         )} AS mail_domain
  FROM people p
)
SELECT id, phone_cat, email_cat, shared,
       lpad(id::text, 10, '0') AS account_number,
       full_name,
       CASE phone_cat
         WHEN 'missing' THEN NULL
         WHEN 'invalid' THEN CASE h_phone % 6
           WHEN 0 THEN '555-' || line WHEN 1 THEN 'n/a' WHEN 2 THEN '+1 ' || npa || ' 555'
           WHEN 3 THEN '000-000-0000' WHEN 4 THEN '(' || npa || ') 555-' || line || ' ext. 12' ELSE 'unknown' END
         ELSE '+1' || npa || '555' || line END AS phone,
       CASE phone_cat WHEN 'missing' THEN NULL WHEN 'invalid' THEN 'mobile' ELSE phone_cat END AS phone_type,
       CASE email_cat
         WHEN 'missing' THEN NULL
         WHEN 'invalid' THEN CASE h_email % 5
           WHEN 0 THEN mail_local || '.example.com' WHEN 1 THEN mail_local || '@@example.com'
           WHEN 2 THEN mail_local || '@example..com' WHEN 3 THEN replace(mail_local, '.', ' ') || ' @example.com'
           ELSE mail_local || '@example' END
         ELSE mail_local || CASE WHEN (h_email / 100000000) % 100 < 5 THEN '+prepaid' ELSE '' END || '@' || mail_domain END AS email,
       ${weighted('u_plan', PLANS)} AS plan,
       CASE WHEN u_status < 200 THEN 'closed' WHEN u_status < 300 THEN 'suspended' ELSE 'active' END AS status,
       u_sms < 200 AS sms_opt_out,
       u_mail_out < 50 AS email_opt_out,
       sha256(int8send(id) || int8send($1::bigint)) AS pin_hash,
       substring(sha256(int8send($1::bigint) || int8send(id) || '\\x73616c74'::bytea) FROM 1 FOR 16) AS pin_salt,
       'synthetic' AS pin_algo
FROM named`;

const ACCOUNT_COLUMNS =
  'id, account_number, full_name, phone, phone_type, email, plan, status, sms_opt_out, email_opt_out, pin_hash, pin_salt, pin_algo';

/** Inserts `count` generated accounts with ids firstId.. for `seed`. Returns rows inserted. */
export async function insertSeedAccounts(client: Sql, seed: number, firstId: number, count: number): Promise<number> {
  const r = await client.query(
    `INSERT INTO accounts (${ACCOUNT_COLUMNS}) SELECT ${ACCOUNT_COLUMNS} FROM (${SEED_GENERATOR_SQL}) g`,
    [seed, firstId, count],
  );
  return r.rowCount ?? 0;
}

export interface SeedCategoryCounts {
  phone: { mobile: number; landline: number; voip: number; unknownType: number; missing: number; invalid: number };
  email: { valid: number; plusTagged: number; idn: number; missing: number; invalid: number };
  smsOptOut: number;
  emailOptOut: number;
  status: { active: number; suspended: number; closed: number };
  sharedContact: number;
}

/** The generator's own category counts for the same parameters (no rows written). */
export async function countSeedCategories(
  client: Sql,
  seed: number,
  firstId: number,
  count: number,
): Promise<SeedCategoryCounts> {
  const { rows } = await client.query(
    `SELECT count(*) FILTER (WHERE phone_cat = 'mobile')::int AS mobile, count(*) FILTER (WHERE phone_cat = 'landline')::int AS landline,
            count(*) FILTER (WHERE phone_cat = 'voip')::int AS voip, count(*) FILTER (WHERE phone_cat = 'unknown')::int AS unknown_type,
            count(*) FILTER (WHERE phone_cat = 'missing')::int AS phone_missing, count(*) FILTER (WHERE phone_cat = 'invalid')::int AS phone_invalid,
            count(*) FILTER (WHERE email_cat = 'valid')::int AS email_valid, count(*) FILTER (WHERE email_cat = 'missing')::int AS email_missing,
            count(*) FILTER (WHERE email_cat = 'invalid')::int AS email_invalid,
            count(*) FILTER (WHERE email_cat = 'valid' AND email LIKE '%+%')::int AS plus_tagged,
            count(*) FILTER (WHERE email_cat = 'valid' AND email ~ '[^\\x01-\\x7f]')::int AS idn,
            count(*) FILTER (WHERE sms_opt_out)::int AS sms_opt_out, count(*) FILTER (WHERE email_opt_out)::int AS email_opt_out,
            count(*) FILTER (WHERE status = 'active')::int AS active, count(*) FILTER (WHERE status = 'suspended')::int AS suspended,
            count(*) FILTER (WHERE status = 'closed')::int AS closed, count(*) FILTER (WHERE shared)::int AS shared
     FROM (${SEED_GENERATOR_SQL}) g`,
    [seed, firstId, count],
  );
  const r = rows[0];
  return {
    phone: {
      mobile: r.mobile,
      landline: r.landline,
      voip: r.voip,
      unknownType: r.unknown_type,
      missing: r.phone_missing,
      invalid: r.phone_invalid,
    },
    email: {
      valid: r.email_valid,
      plusTagged: r.plus_tagged,
      idn: r.idn,
      missing: r.email_missing,
      invalid: r.email_invalid,
    },
    smsOptOut: r.sms_opt_out,
    emailOptOut: r.email_opt_out,
    status: { active: r.active, suspended: r.suspended, closed: r.closed },
    sharedContact: r.shared,
  };
}
