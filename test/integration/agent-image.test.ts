// The agent images: vibebox/agent:base in the guest's Docker store from the image build (and
// imported from the gzipped tarball when the store lost it), and a project layer built FROM it
// through the egress proxy, tagged by content. Real QEMU (TCG here), the real image, real Docker
// in the guest, the real proxy and Debian mirror.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { type RunResult, type TestEnv, bootedSession, egressLog, sh } from '../helpers/vm.js';
import { ImageLayerSpec } from '../../guest/protocol.js';
import { projectImageTag } from '../../guest/docker/project-image.js';

const CLI = 'node /opt/vibebox/guest-containers.js';
const LONG = 1_200_000;
const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

describe('agent images in the guest', () => {
  let t: TestEnv;
  let proj: string;
  let baseSha: string;
  const root = (script: string, timeoutMs = LONG): Promise<RunResult> => sh(t, proj, script, { user: 'root', timeoutMs });
  const timed = async (script: string): Promise<RunResult & { seconds: number }> => {
    const t0 = Date.now();
    const r = await root(script);
    return { ...r, seconds: (Date.now() - t0) / 1000 };
  };
  const project = (spec: Partial<ImageLayerSpec>) => timed(`${CLI} image-project ${q(JSON.stringify(spec))}`);

  before(async () => {
    ({ t, proj } = await bootedSession('agent-image'));
    baseSha = (await root('cat /opt/vibebox/agent-base.tar.sha256')).stdout.trim();
  });
  after(() => t?.cleanup());

  it('the guest image carries the gzipped base tarball and its sha256', { timeout: LONG }, async () => {
    assert.match(baseSha, /^[0-9a-f]{64}$/);
    const r = await root('gzip -dc /opt/vibebox/agent-base.tar.gz | sha256sum | cut -d" " -f1');
    assert.equal(r.stdout.trim(), baseSha);
  });

  it('image-base finds vibebox/agent:base in the Docker store (no import): vibe\'s uid, Node ≥ 22, the tools', { timeout: LONG }, async () => {
    const imp = await timed(`${CLI} image-base`);
    assert.equal(imp.code, 0, imp.stderr);
    assert.equal(imp.stdout.trim(), 'vibebox/agent:base');
    assert.doesNotMatch(imp.stderr, /importing/);
    process.stderr.write(`# image-base (dockerd start, the base already in the store): ${imp.seconds.toFixed(1)}s\n`);

    const guestUid = (await sh(t, proj, 'id -u')).stdout.trim();
    const r = await root([
      'docker run --rm vibebox/agent:base sh -c \'id -u; id -un; pwd; echo "$HOME"; node --version\'',
      'docker run --rm vibebox/agent:base sh -c \'for c in rg jq git python3 socat curl npm bash less ps; do command -v $c >/dev/null || echo "missing $c"; done\'',
      'docker image inspect --format \'{{ index .Config.Labels "org.vibebox.base-sha256" }}\' vibebox/agent:base',
    ].join(' && '));
    assert.equal(r.code, 0, r.stderr);
    const [uid, user, cwd, home, node, ...rest] = r.stdout.trim().split('\n');
    assert.equal(uid, guestUid, 'the container\'s vibe is the guest\'s vibe');
    assert.equal(user, 'vibe');
    assert.equal(cwd, '/workspace');
    assert.equal(home, '/home/vibe');
    assert.ok(Number(/^v(\d+)\./.exec(node ?? '')?.[1]) >= 22, `node ${node}`);
    assert.deepEqual(rest, [baseSha], 'no tool missing; labelled with the tarball sha');
  });

  it('a second image-base is a no-op', { timeout: LONG }, async () => {
    const r = await timed(`${CLI} image-base`);
    assert.equal(r.code, 0, r.stderr);
    assert.doesNotMatch(r.stderr, /importing/);
    assert.ok(r.seconds < 30, `took ${r.seconds}s`);
  });

  const treeSpec = { apt: ['tree'], npm: [], run: ['echo built > /etc/vibebox-layer'] };

  it('image-project builds a layer through the proxy, tagged by content', { timeout: LONG }, async () => {
    const b = await project(treeSpec);
    assert.equal(b.code, 0, b.stderr);
    const tag = b.stdout.trim();
    assert.equal(tag, projectImageTag(ImageLayerSpec.parse(treeSpec), baseSha));
    assert.match(b.stderr, /building the project image/);
    process.stderr.write(`# image-project (apt tree + a run line): ${b.seconds.toFixed(1)}s\n`);
    assert.ok(egressLog(proj).some((l) => l.host === 'deb.debian.org' && l.decision === 'allow'), 'apt went through the egress proxy');

    const r = await root(`docker run --rm ${tag} sh -c 'tree --version; cat /etc/vibebox-layer; id -un; pwd; env | grep -ci proxy || true'`);
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout.trim().split('\n');
    assert.match(lines[0] ?? '', /^tree v/);
    assert.deepEqual(lines.slice(1), ['built', 'vibe', '/workspace', '0'], 'runs as vibe in /workspace; the build\'s proxy settings are not baked in');
    const none = await root('docker ps -aq --filter name=vibebox-layer-build');
    assert.equal(none.stdout.trim(), '', 'the build container is gone');
  });

  it('the same spec again returns the same tag without building', { timeout: LONG }, async () => {
    // Package lists in another order are the same layer.
    const r = await project({ ...treeSpec, apt: ['tree', 'tree'] });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.trim(), projectImageTag(ImageLayerSpec.parse(treeSpec), baseSha));
    assert.doesNotMatch(r.stderr, /building/);
  });

  it('a failing run line is an error naming the step; nothing tagged, no build container left', { timeout: LONG }, async () => {
    const spec = { apt: [], npm: [], run: ['echo step-one-ran', 'exit 3'] };
    const r = await project(spec);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /step-one-ran/);
    assert.match(r.stderr, /^vibebox: the project image build failed at run\[1\] "exit 3" \(exit 3\)/m);
    const tag = projectImageTag(ImageLayerSpec.parse(spec), baseSha);
    const img = await root(`docker image inspect ${tag} >/dev/null 2>&1 && echo tagged || echo absent; docker ps -aq --filter name=vibebox-layer-build | wc -l`);
    assert.deepEqual(img.stdout.trim().split('\n'), ['absent', '0']);
  });

  it('apt works as root in a --cap-drop ALL, no-new-privileges container from the base', { timeout: LONG }, async () => {
    const r = await root([
      'docker run --rm --user root --cap-drop ALL --security-opt no-new-privileges',
      '-e http_proxy=http://10.0.2.100:3128 -e https_proxy=http://10.0.2.100:3128',
      '-v /etc/ssl/certs/ca-certificates.crt:/etc/ssl/certs/ca-certificates.crt:ro',
      'vibebox/agent:base sh -ec "grep CapEff /proc/self/status; apt-get update -q >/dev/null; apt-get install -y -q --no-install-recommends tree >/dev/null; tree --version"',
    ].join(' '));
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /CapEff:\s+0+\n/);
    assert.match(r.stdout, /tree v/);
    // No "cannot chown/chmod" warnings either (apt's partial dirs and terminal log, agent-base.sh).
    assert.doesNotMatch(r.stderr, /^W: /m);
  });

  it('a store that lost the base: image-base imports it from the gzipped tarball, labelled the same', { timeout: LONG }, async () => {
    const rm = await root('docker rmi -f vibebox/agent:base >/dev/null && docker image inspect vibebox/agent:base >/dev/null 2>&1 && echo still || echo gone');
    assert.equal(rm.stdout.trim(), 'gone', rm.stderr);
    const imp = await timed(`${CLI} image-base`);
    assert.equal(imp.code, 0, imp.stderr);
    assert.match(imp.stderr, /importing the agent base image \(not in the Docker store\)/);
    process.stderr.write(`# image-base fallback (docker import of the .tar.gz): ${imp.seconds.toFixed(1)}s\n`);
    const r = await root('docker image inspect --format \'{{ index .Config.Labels "org.vibebox.base-sha256" }}\' vibebox/agent:base; docker run --rm vibebox/agent:base node --version');
    assert.equal(r.code, 0, r.stderr);
    const [label, node] = r.stdout.trim().split('\n');
    assert.equal(label, baseSha);
    assert.ok(Number(/^v(\d+)\./.exec(node ?? '')?.[1]) >= 22, `node ${node}`);
  });
});
