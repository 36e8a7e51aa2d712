/// <reference types="vite/client" />
/// <reference types="vite-plugin-pwa/client" />

/** The build's name (vite.config.ts `define`, from env KVTAB_BUILD_STAMP; `local` by default). */
declare const __KVTAB_BUILD__: string;
