/** The explorer page (web/) as one self-contained HTML string. */
export function buildExplorer(): Promise<string>;
