// The kit key's exact format, shared by kit build (which writes it) and kit serve (which refuses
// anything else): 32 random bytes as base64url, one line. Apart from build.ts so serve does not
// load esbuild and acorn.
export const KEY_FORMAT = /^[A-Za-z0-9_-]{43}\n?$/;
