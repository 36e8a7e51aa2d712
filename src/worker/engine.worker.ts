/**
 * The dedicated Worker that owns the GPU. It exposes one Engine through comlink; the main thread talks
 * to it only through the typed EngineApi.
 */
import * as Comlink from 'comlink';
import { Engine } from '../engine/engine';

const engine = new Engine();
Comlink.expose(engine);
