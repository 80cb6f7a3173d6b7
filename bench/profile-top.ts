// Summarises V8 CPU profiles (node --cpu-prof, e.g. from `npm run bench -- --cpu-prof`): self time
// by function and by package, and inclusive time of chosen frames.
//   npx tsx bench/profile-top.ts <file.cpuprofile> [--top 25] [--match twilio,pg]
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

interface Node {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface Profile {
  nodes: Node[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

/** Which package (or project directory) a script URL belongs to. */
function owner(url: string): string {
  if (!url) return '(native / V8)';
  const nm = url.lastIndexOf('node_modules/');
  if (nm >= 0) {
    const rest = url.slice(nm + 'node_modules/'.length).split('/');
    return rest[0].startsWith('@') ? `${rest[0]}/${rest[1]}` : rest[0];
  }
  if (url.startsWith('node:')) return url.split('/')[0];
  const m = /\/work\/[^/]+\/([^/]+)\//.exec(url) ?? /\/([^/]+)\/[^/]+$/.exec(url);
  return m ? `project:${m[1]}` : url;
}

export function summarise(p: Profile, top = 25, match: string[] = []) {
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const self = new Map<number, number>();
  for (let i = 0; i < p.samples.length; i++)
    self.set(p.samples[i], (self.get(p.samples[i]) ?? 0) + (p.timeDeltas[i] ?? 0));
  const total = [...self.values()].reduce((a, b) => a + b, 0);
  const byFn = new Map<string, number>();
  const byPkg = new Map<string, number>();
  const incl = new Map<string, number>();
  for (const [id, us] of self) {
    const n = byId.get(id)!;
    const f = n.callFrame;
    const key = `${f.functionName || '(anonymous)'} ${f.url.replace(/^.*node_modules\//, '').replace(/^file:\/\/\/work\/[^/]+\//, '')}:${f.lineNumber + 1}`;
    byFn.set(key, (byFn.get(key) ?? 0) + us);
    byPkg.set(owner(f.url), (byPkg.get(owner(f.url)) ?? 0) + us);
    if (match.length) {
      // Inclusive: charge each matching package once per sample stack.
      const seen = new Set<string>();
      for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
        const url = byId.get(cur)!.callFrame.url;
        for (const m of match) if (url.includes(m)) seen.add(m);
      }
      for (const m of seen) incl.set(m, (incl.get(m) ?? 0) + us);
    }
  }
  const pct = (us: number) => `${((100 * us) / total).toFixed(1)}%`;
  const sorted = (m: Map<string, number>) => [...m.entries()].sort((a, b) => b[1] - a[1]);
  return {
    totalMs: Math.round(total / 1000),
    wallMs: Math.round((p.endTime - p.startTime) / 1000),
    packages: sorted(byPkg)
      .slice(0, top)
      .map(([k, us]) => ({ name: k, ms: Math.round(us / 1000), share: pct(us) })),
    functions: sorted(byFn)
      .slice(0, top)
      .map(([k, us]) => ({ name: k, ms: Math.round(us / 1000), share: pct(us) })),
    inclusive: sorted(incl).map(([k, us]) => ({ name: k, ms: Math.round(us / 1000), share: pct(us) })),
  };
}

if (process.argv[1]?.endsWith('profile-top.ts')) {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: { top: { type: 'string', default: '25' }, match: { type: 'string', default: '' } },
  });
  for (const file of positionals) {
    const s = summarise(
      JSON.parse(readFileSync(file, 'utf8')) as Profile,
      Number(values.top),
      values.match ? values.match.split(',') : [],
    );
    console.log(`\n${file}: ${s.totalMs} ms sampled over ${s.wallMs} ms wall (idle included as "(idle)")`);
    console.log('  self time by package:');
    for (const x of s.packages) console.log(`    ${x.share.padStart(6)} ${String(x.ms).padStart(7)} ms  ${x.name}`);
    console.log('  self time by function:');
    for (const x of s.functions) console.log(`    ${x.share.padStart(6)} ${String(x.ms).padStart(7)} ms  ${x.name}`);
    if (s.inclusive.length) {
      console.log('  inclusive (stack contains a script matching):');
      for (const x of s.inclusive) console.log(`    ${x.share.padStart(6)} ${String(x.ms).padStart(7)} ms  ${x.name}`);
    }
  }
}
