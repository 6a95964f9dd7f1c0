/**
 * Branded identifiers: plain strings at run time, distinct types where mixing them would be
 * a bug (a container id passed as an image reference, a spec hash passed as a revision).
 */
declare const brand: unique symbol;
export type Brand<T, B extends string> = T & { readonly [brand]: B };

export type ContainerId = Brand<string, 'ContainerId'>;
export type ImageRef = Brand<string, 'ImageRef'>;
export type SpecHash = Brand<string, 'SpecHash'>;
/** A source revision: a commit sha for Git, a content digest (`dir:...`) for a local directory. */
export type Revision = Brand<string, 'Revision'>;
export type TxId = Brand<string, 'TxId'>;

export const asContainerId = (s: string): ContainerId => s as ContainerId;
export const asImageRef = (s: string): ImageRef => s as ImageRef;
export const asSpecHash = (s: string): SpecHash => s as SpecHash;
export const asRevision = (s: string): Revision => s as Revision;
export const asTxId = (s: string): TxId => s as TxId;
