// The typed errors live on the lower side (guest/errors.ts): images/, qemu/ and proxy/ throw them too.
export * from '../guest/errors.js';
