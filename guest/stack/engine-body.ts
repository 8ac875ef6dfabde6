// A planned service container (plan.ts ContainerSpec) as the Docker Engine API's create body, pure:
// every wall of a service container is visible here and in its unit test.
import type { ContainerSpec } from './plan.js';

export function serviceContainerBody(s: ContainerSpec): Record<string, unknown> {
  const body: Record<string, unknown> = {
    Image: s.image,
    Hostname: s.hostname,
    Env: Object.entries(s.env).map(([k, v]) => `${k}=${v}`),
    Labels: s.labels,
    HostConfig: {
      Mounts: s.mounts.map((m) => ({ Type: 'volume', Source: m.volume, Target: m.target, ReadOnly: m.readOnly })),
      CapDrop: s.capDrop,
      CapAdd: s.capAdd,
      SecurityOpt: s.securityOpt,
      NanoCpus: s.nanoCpus,
      Memory: s.memoryBytes,
      MemorySwap: s.memorySwapBytes,
      PidsLimit: s.pidsLimit,
      RestartPolicy: { Name: s.restartPolicy },
      NetworkMode: s.network,
      Privileged: false,
      // tini reaps what a service's shell command leaves behind.
      Init: true,
    },
    NetworkingConfig: { EndpointsConfig: { [s.network]: { Aliases: s.aliases } } },
  };
  // As compose: the command goes to the image's entrypoint (images built in the VM have none).
  if (s.command) body['Cmd'] = s.command;
  if (s.healthcheck) {
    const h = s.healthcheck;
    body['Healthcheck'] = { Test: h.test, Interval: h.intervalNs, Timeout: h.timeoutNs, Retries: h.retries, StartPeriod: h.startPeriodNs };
  }
  return body;
}
