#!/usr/bin/env node
import "../dist/src/polyfill.js";
import "../dist/src/main.js";
