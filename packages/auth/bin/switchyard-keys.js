#!/usr/bin/env node
// The switchyard-keys command: the compiled CLI (npx tsc -b builds it; the bootstrap does).
import '../dist/cli.js';
