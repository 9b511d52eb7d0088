// Builds the console into dist/: one bundled, minified script and one stylesheet, each named by its content hash
// (so CloudFront may cache them for a year), and index.html naming them. dist/ is committed: `make test` needs no
// npm; `make console` rebuilds it, and a unit test fails when dist/ is older than the sources it was built from.
import { build } from 'esbuild';
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';

const root = new URL('.', import.meta.url).pathname;
const dist = join(root, 'dist');
const hash = (data) => createHash('sha256').update(data).digest('hex');

function sources() {
  // What the build reads: every source file and the lockfile, in a fixed order (the unit test hashes the same).
  const files = [];
  const walk = (dir) => {
    for (const name of readdirSync(dir).sort()) {
      const path = join(dir, name);
      if (statSync(path).isDirectory()) walk(path);
      else files.push(path);
    }
  };
  walk(join(root, 'src'));
  files.push(join(root, 'build.mjs'), join(root, 'package.json'), join(root, 'package-lock.json'));
  return files;
}

const result = await build({
  entryPoints: [join(root, 'src', 'main.js')],
  bundle: true,
  minify: true,
  format: 'esm',
  target: ['es2020'],
  define: { global: 'window' },
  legalComments: 'linked',
  write: false,
  outdir: dist,
});
rmSync(dist, { recursive: true, force: true });
mkdirSync(dist, { recursive: true });
const names = {};
for (const file of result.outputFiles) {
  const ext = file.path.endsWith('.LEGAL.txt') ? 'LEGAL.txt' : 'js';
  const name = ext === 'js' ? `app.${hash(file.contents).slice(0, 12)}.js` : 'THIRD-PARTY-LICENSES.txt';
  names[ext] = name;
  writeFileSync(join(dist, name), file.contents);
}
const css = readFileSync(join(root, 'src', 'app.css'));
names.css = `app.${hash(css).slice(0, 12)}.css`;
writeFileSync(join(dist, names.css), css);
const index = readFileSync(join(root, 'src', 'index.html'), 'utf8')
  .replace('app.js', names.js).replace('app.css', names.css);
writeFileSync(join(dist, 'index.html'), index);

const digest = createHash('sha256');
for (const path of sources()) digest.update(relative(root, path) + '\n').update(readFileSync(path));
writeFileSync(join(dist, 'BUILD.json'), JSON.stringify({
  sources_sha256: digest.digest('hex'), files: Object.values(names).sort(),
}, null, 2) + '\n');
console.log(`console built: ${Object.values(names).join(', ')}`);
