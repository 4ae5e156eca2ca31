#!/usr/bin/env node
// The switchyard-kafka command: the compiled CLI (npx tsc -b builds it; the bootstrap does).
import '../dist/kafka-cli.js';
