// The supervisor→client messages as JSON Schema, generated from the zod definition (build time).
import * as z from 'zod';
import { SupervisorMessage } from './client-protocol.js';
import { unsupportedKeywords, type JsonSchema } from './json-check.js';

export function supervisorMessageJsonSchema(): JsonSchema {
  const s = z.toJSONSchema(SupervisorMessage, { io: 'output' }) as JsonSchema;
  const bad = unsupportedKeywords(s);
  if (bad.length) throw new Error(`protocol schema uses keywords the client checker lacks: ${bad.join(', ')}`);
  return s;
}
