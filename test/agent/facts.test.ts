import { describe, expect, it } from 'vitest';
import { distributionOf, parseOsRelease } from '../../src/agent/facts.js';

const trixie = `PRETTY_NAME="Debian GNU/Linux 13 (trixie)"
NAME="Debian GNU/Linux"
VERSION_ID="13"
VERSION="13 (trixie)"
VERSION_CODENAME=trixie
ID=debian
HOME_URL="https://www.debian.org/"
`;
const noble = `PRETTY_NAME="Ubuntu 24.04.1 LTS"
NAME="Ubuntu"
VERSION_ID="24.04"
ID=ubuntu
ID_LIKE=debian
`;
// Debian sid (and testing between releases) has no VERSION_ID.
const sid = `PRETTY_NAME="Debian GNU/Linux forky/sid"
NAME="Debian GNU/Linux"
VERSION_CODENAME=forky
ID=debian
`;

describe('the distribution an agent reports', () => {
  it("is os-release's ID and VERSION_ID", () => {
    expect(distributionOf(parseOsRelease(trixie))).toBe('debian-13');
    expect(distributionOf(parseOsRelease(noble))).toBe('ubuntu-24.04');
    expect(parseOsRelease(trixie)['PRETTY_NAME']).toBe('Debian GNU/Linux 13 (trixie)');
  });

  it('is the ID alone without VERSION_ID (sid, rolling releases)', () => {
    expect(distributionOf(parseOsRelease(sid))).toBe('debian');
  });

  it('is none without an ID or with characters os-release does not allow', () => {
    expect(distributionOf(parseOsRelease('NAME=Something\n'))).toBeUndefined();
    expect(distributionOf(parseOsRelease('ID="my distro"\nVERSION_ID=1\n'))).toBeUndefined();
    expect(distributionOf({})).toBeUndefined();
  });

  it('reads quoted and upper-case values as os-release allows', () => {
    expect(distributionOf(parseOsRelease("ID='Alpine'\nVERSION_ID='3.20.3'\n"))).toBe('alpine-3.20.3');
  });
});
