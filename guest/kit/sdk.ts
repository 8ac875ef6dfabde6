// The public face of the kit for the package export `vibebox/kit`: the client SDK, the wire
// protocol's types, the storage policy DSL, the runnable's types and wrap() for Glove agents (for kit authors).
export { KitBox, KitClient, KitClientError } from './client.js';
export type { ClientOptions, DisplayEvent, Endpoint, InputFile, PromptHandle, PromptOptions } from './client.js';
export { KIT_PROTOCOL_VERSION } from './kit-protocol.js';
export type { CompleteMsg, EnvironmentInfo, ErrorMsg, EventMsg, FileRef, FileRefKind, StoragePolicy, StorageRule } from './kit-protocol.js';
export { composite, rule } from './storage/policy.js';
export type { KitEvent, KitPrompt, RunContext, RunFn } from './runnable.js';
export { wrap } from './glove.js';
export type { GloveKit, GloveRunnableLike, WrapConfig } from './glove.js';
