import "gradlab";
