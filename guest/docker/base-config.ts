// The config of vibebox/agent:base, as data: the image build writes it into the guest's Docker
// store (images/docker-store.ts) and the guest's fallback import gives the same (base-image.ts).
export const BASE_IMAGE = 'vibebox/agent:base';
export const BASE_SHA_LABEL = 'org.vibebox.base-sha256';
export const CONTAINER_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

export interface BaseConfig {
  User: string;
  WorkingDir: string;
  Env: string[];
  Cmd: string[];
  Labels: Record<string, string>;
}

/** The base's config, labelled with the sha256 of its rootfs tarball (= its layer's diff id). */
export function baseConfig(sha256: string): BaseConfig {
  return {
    User: 'vibe',
    WorkingDir: '/workspace',
    // No HOME: Docker sets it from /etc/passwd for the user a process runs as (/home/vibe for
    // vibe), so `--user root` gets /root rather than a home it may not read without caps.
    // NODE_EXTRA_CA_CERTS: an empty file in the base; whoever runs a container bind-mounts the
    // guest's extra CAs there.
    Env: [`PATH=${CONTAINER_PATH}`, 'LANG=C.UTF-8', 'NODE_EXTRA_CA_CERTS=/etc/vibebox/host-cas.pem'],
    Cmd: ['bash', '-l'],
    Labels: { [BASE_SHA_LABEL]: sha256 },
  };
}
