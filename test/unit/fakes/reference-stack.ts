/** The reference stack's directory as the agent reads it: its Compose file and the tree of its files (nginx's folder). */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { dirProjectTree } from '../../../agent/source/project-tree.js';

export const REFERENCE_DIR = fileURLToPath(new URL('../../../desired-state', import.meta.url));
export const REFERENCE_COMPOSE = readFileSync(`${REFERENCE_DIR}/compose.yaml`, 'utf8');
export const REFERENCE_TREE = await dirProjectTree(REFERENCE_DIR);
