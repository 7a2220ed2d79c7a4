#!/usr/bin/env node
// The kubectl plugin: `kubectl recshard plan FILE` is `recshard plan FILE`.
import { main } from './program.js';

await main(process.argv, 'kubectl recshard');
