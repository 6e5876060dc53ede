// Package docs holds no code. Its directory carries latticed's documentation
// (protocol.md, architecture.md, security.md, operations.md) and its tests
// keep the repository's documentation honest against the code, as package
// deploy does for the deployment files:
//
//   - every package of every module in the repository has a package doc;
//   - architecture.md's package map names exactly the packages that exist;
//   - the dependency rules architecture.md states hold in the import graph;
//   - every path into the repository that a markdown file names exists;
//   - no file cites a document outside the repository, and every citation of
//     a document under docs/ names a file, section number or heading that
//     exists.
//
// It is a package of its own, not part of deploy, so that these checks run
// in seconds: deploy's tests build and run the latticed binary.
package docs
