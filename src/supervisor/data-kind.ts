// Binary frame kinds between client and supervisor. Kept apart from the zod schemas so the
// client's hot path can use it without loading the schema library.
export const DataKind = { stdout: 1, stderr: 2, stdin: 3 } as const;
